#!/usr/bin/env bash
# Short benchmark: `lynkr serve` as users start it, against the shared fake upstream,
# measured with the shared harness (../shared/bench/run_all.sh). Prints the table.
#
#   bench/run.sh                 # Anthropic-format upstream, REPS=1 DURATION=5
#   REPS=3 DURATION=15 bench/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
PORT="${PORT:-19050}"
WORK="$(mktemp -d /tmp/lynkr-bench.XXXXXX)"
export REPS="${REPS:-1}" DURATION="${DURATION:-5}"

cleanup() {
  [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -f /tmp/perf/pids/fake.pid ] && kill "$(cat /tmp/perf/pids/fake.pid)" 2>/dev/null || true
}
trap cleanup EXIT

cd "$WORK"
# The harness repeats one body, so the prompt cache would answer nearly every request: off here.
env HOST=127.0.0.1 PORT="$PORT" LYNKR_API_KEYS=sk-bench-0000 LYNKR_PRESTOP_DELAY_MS=0 PROMPT_CACHE_ENABLED=false \
    MODEL_PROVIDER=databricks DATABRICKS_API_BASE=http://127.0.0.1:19001 \
    DATABRICKS_API_KEY=dapi-bench DATABRICKS_ENDPOINT_PATH=/v1/messages \
    "$ROOT/.venv/bin/lynkr" serve > "$WORK/lynkr.log" 2>&1 &
PID=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health/live" && break; sleep 0.2; done

RESULTS="$WORK" bash "$HARNESS/run_all.sh" "http://127.0.0.1:$PORT" lynkr "$PID"
echo "gateway log: $WORK/lynkr.log"
