#!/usr/bin/env bash
# `make test`'s last step: PostgreSQL and Redis for this run, then pytest (arguments passed on),
# then the run's database and Redis database are dropped. A service that fails to start stops
# here with its reason, and pytest does not run.
set -euo pipefail
python="$1"
shift
services="$(bash scripts/start-services.sh --per-run)"
eval "$services"
trap 'bash scripts/stop-services.sh' EXIT
"$python" -m pytest "$@"
