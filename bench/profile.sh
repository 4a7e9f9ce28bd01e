#!/usr/bin/env bash
# Profile the hot path: `lynkr serve` (one worker) under c=16 non-stream load from the shared
# harness, sampled by py-spy; prints the functions with the most own time and where time goes.
#   bench/profile.sh [SECONDS]
#   FORMAT=openai STREAM=1 CONCURRENCY=1 RATE=500 bench/profile.sh 20   # the other paths, sampled faster
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${HARNESS:-$ROOT/../shared/bench}"
SECONDS_TO_SAMPLE="${1:-10}"
PORT=19051
WORK="$(mktemp -d /tmp/lynkr-profile.XXXXXX)"
PY="${PY:-/tmp/perf/venv/bin/python}"
[ -x "$PY" ] || { python3 -m venv /tmp/perf/venv && /tmp/perf/venv/bin/pip install -q psutil uvloop; }

cleanup() { kill -TERM "${GW:-0}" "${FAKE:-0}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
cd "$WORK"
FAKE_PORT=19002 "$PY" "$HARNESS/fake_upstream.py" > fake.log 2>&1 & FAKE=$!
PROVIDER=(MODEL_PROVIDER=databricks DATABRICKS_API_BASE=http://127.0.0.1:19002 DATABRICKS_API_KEY=dapi-bench
          DATABRICKS_ENDPOINT_PATH=/v1/messages)
if [ "${FORMAT:-anthropic}" = openai ]; then
  PROVIDER=(MODEL_PROVIDER=openai-compatible OPENAI_COMPATIBLE_ENDPOINT=http://127.0.0.1:19002/v1
            OPENAI_COMPATIBLE_MODEL=bench-model)
fi
env PORT=$PORT WEB_CONCURRENCY=1 LYNKR_API_KEYS=sk-bench-0000 LYNKR_PRESTOP_DELAY_MS=0 PROMPT_CACHE_ENABLED=false \
    "${PROVIDER[@]}" "$ROOT/.venv/bin/lynkr" serve > lynkr.log 2>&1 & GW=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health/live" && break; sleep 0.2; done
WORKER="$(pgrep -P "$GW" | head -1)"
"$PY" "$HARNESS/loadgen.py" --url "http://127.0.0.1:$PORT" -c "${CONCURRENCY:-16}" -d $((SECONDS_TO_SAMPLE + 4)) \
    --warmup 1 ${STREAM:+--stream} > load.json &
sleep 2
"$ROOT/.venv/bin/py-spy" record --pid "$WORKER" --duration "$SECONDS_TO_SAMPLE" --rate "${RATE:-100}" --format raw --output stacks.txt ${GIL- --gil} \
    --nonblocking > /dev/null 2>&1
wait %3 2>/dev/null || true
"$ROOT/.venv/bin/python" "$ROOT/bench/top_frames.py" stacks.txt
echo "stacks: $WORK/stacks.txt"
