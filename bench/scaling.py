"""How the gateway's cost grows: body size, concurrency, stream length.

Runs the shared load generator (``../shared/bench/loadgen.py``, imported) against the gateway and,
for the same settings, straight against the fake upstream, and prints one markdown table per axis:
added p50 latency (gateway minus direct), gateway CPU per request, requests/s and tree RSS.

    python bench/scaling.py --url http://127.0.0.1:19050 --pid PID [--duration 5] [--axis body,conc,chunks]

Bodies of other sizes are the shared Claude-Code-shaped body with its conversation padded by
ordinary user/assistant turns up to 200 KB, and by 200 KB screenshots past that (a 1 MB prompt of
text alone would be ~285k tokens, over every context window); 2 KB is the body with tools and
system trimmed to one line and one user turn. The stream-length
axis needs the fake upstream restarted with ``FAKE_CHUNKS``; ``bench/run.sh scaling`` does that.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HARNESS = Path(os.environ.get("HARNESS", Path(__file__).resolve().parents[2] / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))

import body as bodymod  # noqa: E402  (the shared harness)
import loadgen  # noqa: E402

UPSTREAM = "http://127.0.0.1:19001"
SIZES = {"2 KB": 2_000, "21 KB": None, "200 KB": 200_000, "1 MB": 1_000_000}
FILLER = "Here is more of the file under discussion, line by line, for context. " * 20
TEXT_MAX = 200_000  # past this, a real Claude Code prompt grows by screenshots, not text (200 KB ≈ 57k tokens)
SCREENSHOT = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                          "data": base64.b64encode(os.urandom(150_000)).decode()}}


def sized_body(target: int | None) -> Callable[[bool, str], bytes]:
    """A ``body_bytes`` replacement producing about ``target`` bytes (None: the shared body)."""

    def build(stream: bool, model: str = bodymod.MODEL) -> bytes:
        body = json.loads(json.dumps(bodymod.build_body(stream, model)))  # the harness shares nested lists
        if target is None:
            return _compact(body)
        if target < len(json.dumps(body)):
            body["tools"] = []
            body["system"] = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}]
            body["messages"] = [{"role": "user", "content": ""}]
            body["messages"][0]["content"] = (FILLER * 2)[: max(target - len(json.dumps(body)), 0)]
            return _compact(body)
        while len(json.dumps(body)) < min(target, TEXT_MAX):
            body["messages"][:0] = [{"role": "user", "content": FILLER},
                                    {"role": "assistant", "content": [{"type": "text", "text": FILLER}]}]
        while len(json.dumps(body)) < target:
            body["messages"][-1]["content"].insert(0, SCREENSHOT)
        return _compact(body)

    return build


def _compact(body: dict[str, Any]) -> bytes:
    """The body as clients send it (Claude Code's ``JSON.stringify`` and the shared harness: no spaces)."""
    return json.dumps(body, separators=(",", ":")).encode()


def measure(url: str, *, concurrency: int, stream: bool, duration: float, pid: int | None,
            size: int | None) -> dict[str, Any]:
    """One loadgen run with the body of ``size`` bytes (loadgen's options, its defaults otherwise)."""
    bodymod.body_bytes = sized_body(size)
    args = argparse.Namespace(
        url=url, path="/v1/messages", concurrency=concurrency, duration=duration, warmup=1.0, grace=30.0,
        timeout=60.0, max_requests=2_000_000, stream=stream, model=bodymod.MODEL, api_key="sk-bench-0000",
        header=None, pid=pid, upstream_pid=None, sample_interval=0.25, label="", json_out=None,
    )
    return asyncio.run(loadgen.run(args))


def row(label: str, gateway: dict[str, Any], direct: dict[str, Any]) -> str:
    """One table row: added p50, CPU per request, req/s, RSS, errors."""
    key = "ttft_ms" if gateway["stream"] else "lat_ms"
    added = (gateway[key] or {}).get("p50")
    base = (direct[key] or {}).get("p50")
    plus = f"{added - base:.2f}" if added is not None and base is not None else "-"
    return (f"| {label} | {plus} | {gateway.get('target_cpu_ms_per_req', '-')} | {gateway['rps']} | "
            f"{gateway.get('target_rss_peak_mb', '-')} | {gateway['errors']} |")


def axis(title: str, cases: list[tuple[str, dict[str, Any]]], url: str, pid: int | None, duration: float) -> None:
    """Measure every case through the gateway and directly; print the table."""
    added = "+p50 to first delta ms" if cases[0][1]["stream"] else "+p50 ms"
    print(f"\n### {title}\n\n| case | {added} | CPU ms/req | req/s | tree RSS MB | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, case in cases:
        gateway = measure(url, pid=pid, duration=duration, **case)
        direct = measure(UPSTREAM, pid=None, duration=duration, **case)
        print(row(label, gateway, direct), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--axis", default="body,conc", help="body, conc, chunks (comma list)")
    parser.add_argument("--chunks", type=int, default=50, help="FAKE_CHUNKS the fake upstream runs with")
    options = parser.parse_args()
    axes = set(options.axis.split(","))
    common = {"url": options.url, "pid": options.pid, "duration": options.duration}
    if "body" in axes:
        axis("Body size (non-stream, c=16)", [(name, {"concurrency": 16, "stream": False, "size": size})
                                              for name, size in SIZES.items()], **common)
    if "conc" in axes:
        for stream in (False, True):
            axis(f"Concurrency ({'stream' if stream else 'non-stream'}, 21 KB)",
                 [(f"c={c}", {"concurrency": c, "stream": stream, "size": None}) for c in (1, 16, 64, 256)], **common)
    if "chunks" in axes:
        axis(f"Stream of {options.chunks} chunks (21 KB)",
             [(f"c={c}", {"concurrency": c, "stream": True, "size": None}) for c in (1, 16)], **common)


if __name__ == "__main__":
    main()
