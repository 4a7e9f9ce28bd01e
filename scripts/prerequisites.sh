#!/usr/bin/env bash
# The Debian packages `make serve` (runtime) and `make test` (test) need: installed when run as
# root, otherwise named with the exact command to install them (and a non-zero exit).
#   runtime: python3-venv (the venv).
#   test:    + git and openssl (tests), nodejs and npm (npm installs the pinned Claude Code CLI and
#            the Node.js >= 22 it declares, from tests/e2e/package.json), bubblewrap (the shell
#            tool's sandbox), ripgrep (workspace_search), postgresql and redis-server (started by
#            scripts/start-services.sh), nginx, systemd (systemd-analyze), docker-compose (compose
#            file validation; no engine needed) and chromium (the dashboard's browser test).
set -euo pipefail
mode="${1:-test}"
case "$mode" in runtime|test) ;; *) echo "usage: $0 runtime|test" >&2; exit 2 ;; esac

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ "$mode" = test ]; then
  have git || need+=(git)
  have openssl || need+=(openssl)
  have npm || need+=(nodejs npm)
  have bwrap || need+=(bubblewrap)
  have rg || need+=(ripgrep)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  have redis-server || need+=(redis-server)
  have nginx || need+=(nginx)
  have systemd-analyze || need+=(systemd)
  have docker-compose || need+=(docker-compose)
  have chromium || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "make $([ "$mode" = test ] && echo test || echo serve) needs these Debian packages:" \
       "sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing ${need[*]}" >&2
apt-get update -qq
# No recommends: docker-compose would otherwise pull in the whole docker engine.
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
