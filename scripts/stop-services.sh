#!/usr/bin/env bash
# Drops the database and empties the Redis database that scripts/start-services.sh made for this
# run (named by LYNKR_TEST_RUN_DATABASE and LYNKR_TEST_RUN_REDIS_DB); the servers keep running.
set -uo pipefail
if [ -n "${LYNKR_TEST_RUN_DATABASE:-}" ]; then
  su postgres -c "dropdb --if-exists --force $LYNKR_TEST_RUN_DATABASE" \
    || echo "stop-services.sh: could not drop $LYNKR_TEST_RUN_DATABASE" >&2
fi
if [ -n "${LYNKR_TEST_RUN_REDIS_DB:-}" ]; then
  redis-cli -h 127.0.0.1 -n "$LYNKR_TEST_RUN_REDIS_DB" FLUSHDB >/dev/null \
    || echo "stop-services.sh: could not empty Redis database $LYNKR_TEST_RUN_REDIS_DB" >&2
fi
