#!/usr/bin/env bash
# The benchmark: `lynkr serve` as users start it (JSON logging, metrics, usage rows and transcripts
# on) against the shared fake upstream, measured with the shared harness (../shared/bench).
#
#   bench/run.sh                  # both upstream formats, REPS=1 DURATION=5 (short mode)
#   REPS=3 DURATION=15 bench/run.sh   # the full run
#   bench/run.sh scaling          # body size, concurrency and stream-length matrix (bench/scaling.py)
#   bench/run.sh long             # long conversations, 500 KB resent or growing, c=4 (bench/long_conversation.py)
#   bench/run.sh paced            # minute-long streams: deltas 100 ms apart, c=256/1000/2000, direct vs Lynkr
#                                 # (PACED_CONC="256 1000", PACED_SECONDS=20, TOOLS as below)
#   FORMATS=anthropic bench/run.sh
#   TOOLS="off" bench/run.sh      # only without WORKSPACE_ROOT ("on": with it, the default server mode)
#
# The gateway's process tree runs on CPU 1 from its start (so it sizes itself for one core, as on
# a one-core machine: one worker); load generator and fake upstream on CPU 0. The fake
# upstream counts the model requests it answers (bench/counting_upstream.py); a run whose count
# differs from what the load generator sent fails. The prompt cache is off for the main tables
# (the harness repeats one body) and measured in its own row.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HARNESS="${HARNESS:-$ROOT/../shared/bench}"
PERF="${PERF:-/tmp/perf}"
PORT="${PORT:-19050}"
WORK="$(mktemp -d /tmp/lynkr-bench.XXXXXX)"
export REPS="${REPS:-1}" DURATION="${DURATION:-5}" PERF
FORMATS="${FORMATS:-anthropic openai}"
# "on": WORKSPACE_ROOT set, so every request takes the default TOOL_EXECUTION_MODE=server path
# (Lynkr's tools offered, the agent loop) as most users run it; "off": the plain proxy path.
TOOLS="${TOOLS:-off on}"
mkdir -p "$WORK/workspace"
PY="$PERF/venv/bin/python"
LYNKR="$ROOT/.venv/bin/lynkr"
GATEWAY_PID="" UPSTREAM_PID=""

mkdir -p "$PERF/pids" "$PERF/logs"
[ -x "$PY" ] || python3 -m venv "$PERF/venv"
"$PY" -c 'import psutil, uvloop' 2>/dev/null || "$PY" -m pip install -q psutil uvloop

stop_gateway() {
  if [ -n "$GATEWAY_PID" ]; then kill -TERM "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
  GATEWAY_PID=""
}
stop_upstream() {
  if [ -n "$UPSTREAM_PID" ]; then kill "$UPSTREAM_PID" 2>/dev/null || true; wait "$UPSTREAM_PID" 2>/dev/null || true; fi
  UPSTREAM_PID=""
}
trap 'stop_gateway; stop_upstream' EXIT

start_upstream() {  # [FAKE_CHUNKS [FAKE_DELAY_MS]]
  stop_upstream
  if ss -ltnH "sport = :19001" | grep -q LISTEN; then
    echo "port 19001 is taken (another fake upstream?); stop it first" >&2; exit 1
  fi
  FAKE_PORT=19001 FAKE_CHUNKS="${1:-50}" FAKE_DELAY_MS="${2:-0}" taskset -c 0 "$PY" "$ROOT/bench/counting_upstream.py" \
    > "$WORK/upstream.log" 2>&1 &
  UPSTREAM_PID=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:19001/health && return; sleep 0.1; done
  echo "the fake upstream did not start" >&2; exit 1
}

start_gateway() {  # FORMAT [VAR=value ...]
  local format="$1"; shift
  local provider=(MODEL_PROVIDER=databricks DATABRICKS_API_BASE=http://127.0.0.1:19001
                  DATABRICKS_API_KEY=dapi-bench DATABRICKS_ENDPOINT_PATH=/v1/messages)
  if [ "$format" = openai ]; then
    provider=(MODEL_PROVIDER=openai-compatible OPENAI_COMPATIBLE_ENDPOINT=http://127.0.0.1:19001/v1
              OPENAI_COMPATIBLE_MODEL=bench-model)
  fi
  stop_gateway
  mkdir -p "$WORK/$format"
  (cd "$WORK/$format" && exec env HOST=127.0.0.1 PORT="$PORT" LYNKR_API_KEYS=sk-bench-0000 \
      LYNKR_PRESTOP_DELAY_MS=0 PROMPT_CACHE_ENABLED=false "${provider[@]}" "$@" \
      taskset -c 1 "$LYNKR" serve > "$WORK/$format/lynkr.log" 2>&1) &
  GATEWAY_PID=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health/live" && break; sleep 0.1; done
  for p in $GATEWAY_PID $(pgrep -P "$GATEWAY_PID" 2>/dev/null || true); do
    taskset -a -p -c 1 "$p" > /dev/null 2>&1 || true
    for c in $(pgrep -P "$p" 2>/dev/null || true); do taskset -a -p -c 1 "$c" > /dev/null 2>&1 || true; done
  done
}

upstream_count() {  # messages | chat_completions
  curl -s http://127.0.0.1:19001/__counts | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

loadgen() {  # extra loadgen args; prints its JSON line
  taskset -c 0 "$PY" "$HARNESS/loadgen.py" --url "http://127.0.0.1:$PORT" --pid "$GATEWAY_PID" "$@"
}

check_counts() {  # FORMAT: every request the client sends reaches the upstream exactly once
  local key=messages; [ "$1" = openai ] && key=chat_completions
  curl -s -X POST http://127.0.0.1:19001/__counts/reset > /dev/null
  local sent=0 ok
  for s in "" "--stream"; do
    ok="$(loadgen -c 16 -d 60 --warmup 0 --max-requests 1000 $s | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ok"])')"
    sent=$((sent + ok))
  done
  local seen; seen="$(upstream_count "$key")"
  echo "count check ($1): client got $sent answers, the upstream answered $seen requests"
  [ "$sent" = 2000 ] && [ "$seen" = 2000 ] || { echo "COUNT MISMATCH" >&2; exit 1; }
}

cache_row() {
  start_gateway anthropic PROMPT_CACHE_ENABLED=true
  curl -s -X POST http://127.0.0.1:19001/__counts/reset > /dev/null
  echo; echo "Prompt cache hits (one body repeated; PROMPT_CACHE_ENABLED=true):"
  for s in "" "--stream"; do
    loadgen -c 16 -d "$DURATION" --warmup 1 $s | "$PY" "$ROOT/bench/oneline.py"
  done
  echo "  upstream requests during the cache runs: $(upstream_count messages)"
}

if [ "${1:-}" = scaling ]; then
  start_upstream 50
  start_gateway anthropic
  taskset -c 0 "$PY" "$ROOT/bench/scaling.py" --url "http://127.0.0.1:$PORT" --pid "$GATEWAY_PID" \
    --duration "$DURATION" --axis body,conc
  start_upstream 2000
  taskset -c 0 "$PY" "$ROOT/bench/scaling.py" --url "http://127.0.0.1:$PORT" --pid "$GATEWAY_PID" \
    --duration "$DURATION" --axis chunks --chunks 2000
  exit 0
fi

if [ "${1:-}" = long ]; then
  start_upstream 50
  start_gateway anthropic
  taskset -c 0 "$PY" "$ROOT/bench/long_conversation.py" --url "http://127.0.0.1:$PORT" --pid "$GATEWAY_PID" \
    --duration "$DURATION" --pad-kb "${BENCH_PAD_KB:-500}"
  exit 0
fi

paced_row() {  # LABEL URL PID C: one paced-stream cell, printed as a row
  local result
  result="$(taskset -c 0 "$PY" "$HARNESS/loadgen.py" --url "$2" --pid "$3" -c "$4" -d "${PACED_SECONDS:-20}" \
    --warmup 6 --stream --timeout 120 --grace 15)"
  echo "$result" >> "$WORK/paced.jsonl"
  echo "$result" | "$PY" -c "
import json, sys
r = json.load(sys.stdin)
print(f'| $1 | {r[\"concurrency\"]} | {r[\"rps\"]} | {r[\"ttft_ms\"][\"p50\"]} | {r[\"errors\"]} | '
      f'{r.get(\"target_rss_peak_mb\")} | {r.get(\"target_cpu_ms_per_req\")} |')"
}

if [ "${1:-}" = paced ]; then
  # The fake upstream paces 50 deltas 100 ms apart (5 s streams); "direct" is the client on the
  # fake upstream itself, the ceiling the harness allows on this machine.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  start_upstream 50 100
  echo "| path | c | streams/s | first delta p50 ms | errors | tree RSS MB | CPU ms/stream |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for conc in ${PACED_CONC:-256 1000 2000}; do
    paced_row direct http://127.0.0.1:19001 "$UPSTREAM_PID" "$conc"
    for tools in $TOOLS; do
      workspace=(); [ "$tools" = on ] && workspace=(WORKSPACE_ROOT="$WORK/workspace")
      start_gateway anthropic "${workspace[@]}"
      paced_row "Lynkr, tools $tools" "http://127.0.0.1:$PORT" "$GATEWAY_PID" "$conc"
    done
  done
  exit 0
fi

start_upstream 50
for tools in $TOOLS; do
  workspace=(); [ "$tools" = on ] && workspace=(WORKSPACE_ROOT="$WORK/workspace")
  for format in $FORMATS; do
    echo; echo "=== $format-format upstream, server tools $tools ==="
    start_gateway "$format" "${workspace[@]}"
    PIN=0 RESULTS="$WORK" bash "$HARNESS/run_all.sh" "http://127.0.0.1:$PORT" "lynkr-$format-tools-$tools" \
      "$GATEWAY_PID"
    check_counts "$format"
  done
done
cache_row
echo "gateway logs: $WORK/*/lynkr.log"
