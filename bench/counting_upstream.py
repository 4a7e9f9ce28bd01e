"""The shared fake upstream (../shared/bench/fake_upstream.py), counting the model requests it answers.

``GET /__counts`` returns ``{"messages": N, "chat_completions": M}``; ``POST /__counts/reset`` zeroes
them. The benchmark compares these with the requests its load generator sent, so a gateway that
answered from a cache or dropped requests cannot pass unnoticed. Everything else is the shared
fake's own code, imported, not copied.

    python bench/counting_upstream.py        # FAKE_PORT (19001) as the shared fake
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

HARNESS = Path(os.environ.get("HARNESS", Path(__file__).resolve().parents[2] / "shared" / "bench"))
sys.path.insert(0, str(HARNESS))

import fake_upstream  # noqa: E402  (the shared harness, found through HARNESS)

COUNTS = {"messages": 0, "chat_completions": 0}
_handle = fake_upstream.HTTPServerProtocol.handle


def _counting_handle(self: Any, method: str, path: str, hdr: dict, body: bytes, keep: bool) -> bool:
    route = path.split("?", 1)[0]
    if route.startswith("/__counts"):
        if method == "POST":
            COUNTS.update(dict.fromkeys(COUNTS, 0))
        self.t.write(fake_upstream.http_json(json.dumps(COUNTS).encode()))
        return False
    if method == "POST" and route.endswith("/chat/completions"):
        COUNTS["chat_completions"] += 1
    elif method == "POST" and route.endswith("/messages"):
        COUNTS["messages"] += 1
    return _handle(self, method, path, hdr, body, keep)


fake_upstream.HTTPServerProtocol.handle = _counting_handle

if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(fake_upstream.main())
