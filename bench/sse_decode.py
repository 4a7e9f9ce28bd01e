"""SSE decoding time per MB for one huge line, for the decoder now and the one at an older commit.

One ``data:`` line of 10, 20 and 40 MB (a JSON string of ASCII letters) is fed in 64 KB reads, as
the provider reads an upstream stream; each row prints seconds and seconds per MB. ``--before REV``
loads ``app/anthropic/sse.py`` as it was at that git revision and times it beside today's (the
decoder that rescanned its buffer on every read was last at ``c2b9eaf``)::

    .venv/bin/python bench/sse_decode.py --before c2b9eaf [--sizes 10,20,40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.anthropic import sse  # noqa: E402

READ_BYTES = 65536
MB = 1024**2


def module_at(revision: str) -> types.ModuleType:
    """``app/anthropic/sse.py`` as it was at ``revision``, loaded as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:app/anthropic/sse.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"sse_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:app/anthropic/sse.py", "exec"), module.__dict__)  # noqa: S102
    return module


def one_line_stream(megabytes: int) -> bytes:
    """An SSE stream holding one event whose single data line is ``megabytes`` MB long."""
    return b'data: {"text":"' + b"a" * (megabytes * MB) + b'"}\n\n'


def decode_seconds(decoder_class: Any, raw: bytes) -> float:
    """Seconds to decode ``raw`` in 64 KB reads (the event must come out whole)."""
    decoder = decoder_class()
    started = time.perf_counter()
    events = []
    for offset in range(0, len(raw), READ_BYTES):
        events += decoder.feed(raw[offset:offset + READ_BYTES])
    elapsed = time.perf_counter() - started
    if len(events) != 1 or len(events[0].data) != len(raw) - len(b"data: \n\n"):
        raise SystemExit("the decoder did not return the one event whole")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision whose decoder to time as well")
    parser.add_argument("--sizes", default="10,20,40", help="line sizes in MB, comma-separated")
    args = parser.parse_args()
    decoders = [("now", sse.SSEDecoder)]
    if args.before:
        decoders.insert(0, (f"at {args.before}", module_at(args.before).SSEDecoder))
    print(f"{'decoder':<14} {'line MB':>8} {'seconds':>9} {'s per MB':>9}")
    for megabytes in (int(size) for size in args.sizes.split(",")):
        raw = one_line_stream(megabytes)
        for name, decoder_class in decoders:
            seconds = decode_seconds(decoder_class, raw)
            print(f"{name:<14} {megabytes:>8} {seconds:>9.3f} {seconds / megabytes:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
