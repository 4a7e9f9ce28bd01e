"""Long conversations (issue 18): what a request costs late in a Claude Code session.

Runs the shared load generator (``../shared/bench/loadgen.py``, imported) against the gateway and
prints one markdown table: CPU per request, requests/s, p50 and tree RSS for

- the shared 21 KB body (the reference),
- the body grown to ``--pad-kb`` KB (``BENCH_PAD_KB``: Read round trips before the last turn), sent
  unchanged on every request, as the shared harness does,
- the same conversation *growing*: each connection is a session of its own (its own session id)
  that adds a new Read round trip (a new file's content) to its history on every request and
  moves the ``cache_control`` marker to the newest turn, as Claude Code does; after
  ``--turns`` requests it starts again from the padded body. The history is resent, the new
  turns are content the gateway has never seen,
- the 1 MB body of ``bench/scaling.py`` (200 KB of text and screenshots, c=16), its body-size row.

    python bench/long_conversation.py --url http://127.0.0.1:19050 --pid PID [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

HARNESS = Path(os.environ.get("HARNESS", Path(__file__).resolve().parents[2] / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import body as bodymod  # noqa: E402  (the shared harness)
import loadgen  # noqa: E402
import scaling  # noqa: E402

MARKER = {"type": "ephemeral"}
_SESSIONS = itertools.count()


def padded_body(stream: bool, pad_kb: int) -> dict[str, Any]:
    """The shared body with its conversation grown to about ``pad_kb`` KB."""
    os.environ["BENCH_PAD_KB"] = str(pad_kb)
    try:
        return json.loads(json.dumps(bodymod.build_body(stream)))  # the harness shares nested lists
    finally:
        del os.environ["BENCH_PAD_KB"]


class Session:
    """One client's growing conversation, serialised piecewise so each request costs a join."""

    def __init__(self, base: dict[str, Any], turns: int) -> None:
        self.base, self.turns = base, turns
        self.number = next(_SESSIONS)
        self.sent = 0
        self._start()

    def _start(self) -> None:
        body = json.loads(json.dumps(self.base))
        body["metadata"] = {"user_id": f"user_bench_account__session_00000000-0000-0000-0000-{self.number:012d}"}
        self.messages = [_unmarked(m) for m in body["messages"]]
        self.head = json.dumps({k: v for k, v in body.items() if k != "messages"}, separators=(",", ":"))
        self.pieces = [json.dumps(m, separators=(",", ":")).encode() for m in self.messages]
        self.grown = 0

    def next_body(self) -> bytes:
        """The next request: the history so far plus one new Read round trip, the marker on it."""
        if self.grown == self.turns:
            self._start()
        self.sent += 1
        self.grown += 1
        tid = f"toolu_s{self.number}_{self.sent:06d}"
        new = [{"role": "assistant", "content": [
                   {"type": "text", "text": f"Reading module {self.sent} of session {self.number}."},
                   {"type": "tool_use", "id": tid, "name": "Read",
                    "input": {"file_path": f"/home/user/project/src/s{self.number}_{self.sent}.py"}}]},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": tid,
                    "content": bodymod._FILE.replace("handler_", f"s{self.number}_{self.sent}_")}]}]
        self.pieces += [json.dumps(m, separators=(",", ":")).encode() for m in new]
        marked = dict(new[-1], content=[dict(new[-1]["content"][-1], cache_control=MARKER)])
        last = json.dumps(marked, separators=(",", ":")).encode()
        messages = b"[" + b",".join([*self.pieces[:-1], last]) + b"]"
        return self.head[:-1].encode() + b',"messages":' + messages + b"}"


def _unmarked(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    return {**message, "content": [{k: v for k, v in block.items() if k != "cache_control"} for block in content]}


def growing_proto(base: dict[str, Any], turns: int, headers: bytes) -> type[loadgen.ClientProto]:
    """A loadgen connection that is one growing session: it sends its own next body each time."""

    class GrowingProto(loadgen.ClientProto):
        def __init__(self, stream: bool) -> None:
            super().__init__(stream)
            self.session = Session(base, turns)

        def send(self, req: bytes, res: Any, fut: Any) -> None:
            body = self.session.next_body()
            super().send(headers + f"content-length: {len(body)}\r\n\r\n".encode() + body, res, fut)

    return GrowingProto


def measure(url: str, pid: int | None, *, concurrency: int, stream: bool, duration: float,
            body: bytes | None = None, growing: dict[str, Any] | None = None, turns: int = 16) -> dict[str, Any]:
    """One loadgen run sending ``body`` (or a growing session per connection from ``growing``;
    ``body`` is then only the size reported)."""
    shared_body_bytes, shared_proto = bodymod.body_bytes, loadgen.ClientProto
    if body is not None:
        bodymod.body_bytes = lambda stream, model=bodymod.MODEL: body
    if growing is not None:
        host = url.split("//", 1)[1].rstrip("/")
        headers = (f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                   f"accept: application/json\r\nx-api-key: sk-bench-0000\r\nanthropic-version: 2023-06-01\r\n"
                   f"user-agent: claude-cli/2.0.0 (external, cli)\r\n").encode()
        loadgen.ClientProto = growing_proto(growing, turns, headers)
    args = argparse.Namespace(
        url=url, path="/v1/messages", concurrency=concurrency, duration=duration, warmup=2.0, grace=30.0,
        timeout=60.0, max_requests=2_000_000, stream=stream, model=bodymod.MODEL, api_key="sk-bench-0000",
        header=None, pid=pid, upstream_pid=None, sample_interval=0.25, label="", json_out=None,
    )
    try:
        return asyncio.run(loadgen.run(args))
    finally:
        bodymod.body_bytes, loadgen.ClientProto = shared_body_bytes, shared_proto


def row(label: str, result: dict[str, Any]) -> str:
    """One table row."""
    key = "ttft_ms" if result["stream"] else "lat_ms"
    return (f"| {label} | {'stream' if result['stream'] else 'non-stream'} | {result['concurrency']} | "
            f"{result['req_bytes'] / 1000:.0f} KB | {result.get('target_cpu_ms_per_req', '-')} | {result['rps']} | "
            f"{(result[key] or {}).get('p50')} | {result.get('target_rss_peak_mb', '-')} | {result['errors']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--pad-kb", type=int, default=500)
    parser.add_argument("--turns", type=int, default=16, help="requests per growing session before it restarts")
    options = parser.parse_args()
    os.environ.pop("BENCH_PAD_KB", None)  # the reference rows are the shared, unpadded body
    url, pid, duration = options.url, options.pid, options.duration
    print(f"\n### Long conversations (BENCH_PAD_KB={options.pad_kb}, one session per connection when growing)\n")
    print("| body | mode | c | request | CPU ms/req | req/s | p50 ms (stream: to first delta) | tree RSS MB | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for stream in (False, True):
        reference = measure(url, pid, concurrency=4, stream=stream, duration=duration)
        print(row("21 KB (shared body)", reference), flush=True)
        padded = padded_body(stream, options.pad_kb)
        same = json.dumps(padded, separators=(",", ":")).encode()
        print(row(f"{options.pad_kb} KB, the same body", measure(url, pid, concurrency=4, stream=stream,
                                                                  duration=duration, body=same)), flush=True)
        growing = measure(url, pid, concurrency=4, stream=stream, duration=duration, body=same, growing=padded,
                          turns=options.turns)
        print(row(f"{options.pad_kb} KB, growing", growing), flush=True)
    one_mb = scaling.sized_body(scaling.SIZES["1 MB"])(False)
    print(row("1 MB (scaling's)", measure(url, pid, concurrency=16, stream=False, duration=duration, body=one_mb)))


if __name__ == "__main__":
    main()
