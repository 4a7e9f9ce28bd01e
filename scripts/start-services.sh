#!/usr/bin/env bash
# Installs (Debian) and starts PostgreSQL and Redis on 127.0.0.1 for the database- and
# Redis-marked tests, and prints the URLs to export. Needs root, as CI runs.
set -euo pipefail
if [ -n "${LYNKR_TEST_DATABASE_URL:-}" ] && [ -n "${LYNKR_TEST_REDIS_URL:-}" ]; then
  echo "export LYNKR_TEST_DATABASE_URL=$LYNKR_TEST_DATABASE_URL"
  echo "export LYNKR_TEST_REDIS_URL=$LYNKR_TEST_REDIS_URL"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-services.sh installs and starts PostgreSQL and Redis and needs root; or run your own" \
       "and set LYNKR_TEST_DATABASE_URL and LYNKR_TEST_REDIS_URL" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql redis-server >/dev/null
fi

version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do su postgres -c "pg_isready -q -h 127.0.0.1" && break; sleep 1; done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'lynkr'\"" | grep -q 1 \
  || su postgres -c "psql -q -c \"CREATE ROLE lynkr LOGIN PASSWORD 'lynkr'\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname = 'lynkr_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O lynkr lynkr_test"

redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null
for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done

echo "export LYNKR_TEST_DATABASE_URL=postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test"
echo "export LYNKR_TEST_REDIS_URL=redis://127.0.0.1:6379/15"
