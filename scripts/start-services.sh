#!/usr/bin/env bash
# Starts PostgreSQL and Redis on 127.0.0.1 for the tests marked postgres/redis (`services`) and
# prints the exports to eval. With --per-run (what `make test` passes) the run gets a database of
# its own (created here) and a Redis database of its own (claimed here, among 1-15), so concurrent
# runs never share state, and scripts/stop-services.sh drops both afterwards; without it, the
# shared lynkr_test database and Redis database 15 (for a quick `eval` by hand). Needs root
# (Debian's cluster tools). With LYNKR_TEST_DATABASE_URL and LYNKR_TEST_REDIS_URL already set,
# those servers are used as they are. Any failure exits non-zero with its reason on stderr.
set -euo pipefail
per_run=false
[ "${1:-}" = --per-run ] && per_run=true
fail() { echo "start-services.sh: $*" >&2; exit 1; }

if [ -n "${LYNKR_TEST_DATABASE_URL:-}" ] && [ -n "${LYNKR_TEST_REDIS_URL:-}" ]; then
  echo "export LYNKR_TEST_DATABASE_URL=$LYNKR_TEST_DATABASE_URL"
  echo "export LYNKR_TEST_REDIS_URL=$LYNKR_TEST_REDIS_URL"
  exit 0
fi
[ "$(id -u)" = 0 ] || fail "starting PostgreSQL and Redis needs root; or run your own and set" \
                          "LYNKR_TEST_DATABASE_URL and LYNKR_TEST_REDIS_URL (or run pytest -m 'not services')"
command -v pg_ctlcluster >/dev/null 2>&1 || fail "PostgreSQL is not installed (bash scripts/prerequisites.sh test)"
command -v redis-server >/dev/null 2>&1 || fail "Redis is not installed (bash scripts/prerequisites.sh test)"

version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null || fail "pg_createcluster $version main failed"
fi
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
  pg_ctlcluster "$version" main start >&2 || fail "PostgreSQL $version did not start (see the lines above)"
fi
for _ in $(seq 1 30); do su postgres -c "pg_isready -q -h 127.0.0.1" && break; sleep 1; done
su postgres -c "pg_isready -q -h 127.0.0.1" || fail "PostgreSQL does not answer on 127.0.0.1:5432"
psql_do() { su postgres -c "psql -q -v ON_ERROR_STOP=1 -tc \"$1\""; }
psql_do "SELECT 1 FROM pg_roles WHERE rolname = 'lynkr'" | grep -q 1 \
  || psql_do "CREATE ROLE lynkr LOGIN PASSWORD 'lynkr'" >/dev/null || fail "could not create the lynkr role"
if $per_run; then
  run="lynkr_test_$(date +%s)_$$"
  su postgres -c "createdb -O lynkr $run" || fail "could not create the database $run"
else
  run=lynkr_test
  psql_do "SELECT 1 FROM pg_database WHERE datname = '$run'" | grep -q 1 \
    || su postgres -c "createdb -O lynkr $run" || fail "could not create the database $run"
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6379 --save '' --daemonize yes >/dev/null || fail "redis-server did not start"
fi
for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || fail "Redis does not answer on 127.0.0.1:6379"
redis_db=15
if $per_run; then
  redis_db=""
  for n in $(seq 1 14); do
    if [ "$(redis-cli -h 127.0.0.1 -n "$n" SET lynkr:test-run "$run" NX EX 7200)" = OK ]; then redis_db=$n; break; fi
  done
  [ -n "$redis_db" ] || fail "Redis databases 1-14 are all claimed by other test runs (key lynkr:test-run)"
fi

echo "export LYNKR_TEST_DATABASE_URL=postgresql://lynkr:lynkr@127.0.0.1:5432/$run"
echo "export LYNKR_TEST_REDIS_URL=redis://127.0.0.1:6379/$redis_db"
if $per_run; then
  echo "export LYNKR_TEST_RUN_DATABASE=$run LYNKR_TEST_RUN_REDIS_DB=$redis_db"
fi
