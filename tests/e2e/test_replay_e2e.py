"""Recorded Claude Code requests (``shared/fixtures/claude-code``) replayed through real gunicorn
to the strict fake Databricks endpoint: each must be accepted and streamed back intact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.streams import validate_stream
from tests.conftest import FIXTURES, load_fixture
from tests.e2e.conftest import DATABRICKS_TOKEN, launch_gateway, stop_gateway, wait_live
from tests.e2e.helpers import Gateway, read_sse
from tests.fakes.anthropic_upstream import DEFAULT_TEXT, FakeAnthropicUpstream

RECORDED = sorted(path.name for path in FIXTURES.glob("*-request*.json"))
# Transport headers belong to the recording's connection, not to the request.
TRANSPORT = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


@pytest.fixture(scope="module")
def replay_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, FakeAnthropicUpstream]]:
    """One gateway and one strict fake for every recorded request."""
    with FakeAnthropicUpstream(strict=True, token=DATABRICKS_TOKEN) as upstream:
        gateway = launch_gateway(tmp_path_factory.mktemp("replay"), upstream)
        try:
            wait_live(gateway)
            yield gateway, upstream
        finally:
            problem = stop_gateway(gateway)
        assert problem is None, problem


def test_fixtures_are_present() -> None:
    """The recordings sit beside the repository (otherwise the replay below would test nothing)."""
    assert len(RECORDED) >= 10, f"expected recorded requests in {FIXTURES}"


@pytest.mark.parametrize("name", RECORDED, ids=[Path(n).stem for n in RECORDED])
def test_recorded_request_is_accepted_by_databricks(replay_target: tuple[Gateway, FakeAnthropicUpstream],
                                                    name: str) -> None:
    """Sent with its recorded headers and ``?beta=true``: the fake accepts it and the stream is valid."""
    gateway, upstream = replay_target
    recorded = load_fixture(name)
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in TRANSPORT}
    before = len(upstream.requests)

    with requests.post(f"{gateway.url}{recorded['path']}?{recorded['query']}", json=recorded["body"],
                       headers=headers, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        seen = read_sse(response)

    [sent] = upstream.requests[before:]
    assert sent.rejected is None, f"Databricks would answer 400: {sent.rejected}"
    validate_stream(seen.events)
    assert seen.text() == DEFAULT_TEXT
    assert seen.events[0]["message"]["model"] == recorded["body"]["model"]
