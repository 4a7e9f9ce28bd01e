"""Replaying the recorded Claude Code requests (``shared/fixtures/claude-code``) through a real
gateway, for ``test_replay_e2e.py`` (Databricks) and ``test_openai_replay.py`` (OpenAI)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from tests.conftest import FIXTURES, load_fixture
from tests.e2e.conftest import launch_gateway, stop_gateway, wait_live
from tests.e2e.helpers import Gateway, SSERead, read_sse

RECORDED = sorted(path.name for path in FIXTURES.glob("*-request*.json"))
RECORDED_IDS = [Path(n).stem for n in RECORDED]
# Transport headers belong to the recording's connection, not to the request.
TRANSPORT = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


@contextlib.contextmanager
def gateway_for(tmp: Path, upstream: Any, **overrides: Any) -> Iterator[Gateway]:
    """A live gateway in ``tmp`` (see ``launch_gateway``), stopped cleanly on the way out."""
    gateway = launch_gateway(tmp, upstream, **overrides)
    try:
        wait_live(gateway)
        yield gateway
    finally:
        problem = stop_gateway(gateway)
    assert problem is None, problem


def replay(gateway: Gateway, name: str) -> tuple[dict[str, Any], SSERead]:
    """Send the recording ``name`` to ``gateway`` with its recorded path, query and headers (less the
    transport ones); returns the recording and the stream read back, which must be a 200."""
    recorded = load_fixture(name)
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in TRANSPORT}

    with requests.post(f"{gateway.url}{recorded['path']}?{recorded['query']}", json=recorded["body"],
                       headers=headers, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        seen = read_sse(response)
    return recorded, seen
