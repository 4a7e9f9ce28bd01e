"""Prints one loadgen JSON result (read from stdin) as a readable line."""

import json
import sys

result = json.load(sys.stdin)
mode = "stream" if result["stream"] else "non-stream"
latency = (result["ttft_ms"] if result["stream"] else result["lat_ms"])["p50"]
print(f"  {mode} c={result['concurrency']}: {result['rps']} req/s, p50 {latency} ms"
      f"{' to first delta' if result['stream'] else ''}, CPU {result.get('target_cpu_ms_per_req')} ms/req, "
      f"tree RSS {result.get('target_rss_peak_mb')} MB, errors {result['errors']}")
