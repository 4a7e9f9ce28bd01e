"""Recorded Claude Code requests (``shared/fixtures/claude-code``) replayed through real gunicorn
to the strict fake Databricks endpoint: each must be accepted and streamed back intact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.anthropic.events import validate_stream
from tests.conftest import FIXTURES
from tests.e2e.conftest import DATABRICKS_TOKEN
from tests.e2e.helpers import Gateway
from tests.e2e.replay_helpers import RECORDED, RECORDED_IDS, gateway_for, replay
from tests.fakes.anthropic_upstream import DEFAULT_TEXT, FakeAnthropicUpstream


@pytest.fixture(scope="module")
def replay_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, FakeAnthropicUpstream]]:
    """One gateway and one strict fake for every recorded request."""
    with (FakeAnthropicUpstream(strict=True, token=DATABRICKS_TOKEN) as upstream,
          gateway_for(tmp_path_factory.mktemp("replay"), upstream) as gateway):
        yield gateway, upstream


def test_fixtures_are_present() -> None:
    """The recordings sit beside the repository (otherwise the replay below would test nothing)."""
    assert len(RECORDED) >= 10, f"expected recorded requests in {FIXTURES}"


@pytest.mark.parametrize("name", RECORDED, ids=RECORDED_IDS)
def test_recorded_request_is_accepted_by_databricks(replay_target: tuple[Gateway, FakeAnthropicUpstream],
                                                    name: str) -> None:
    """Sent with its recorded headers and ``?beta=true``: the fake accepts it and the stream is valid."""
    gateway, upstream = replay_target
    before = len(upstream.requests)

    recorded, seen = replay(gateway, name)

    [sent] = upstream.requests[before:]
    assert sent.rejected is None, f"Databricks would answer 400: {sent.rejected}"
    validate_stream(seen.events)
    assert seen.text() == DEFAULT_TEXT
    assert seen.events[0]["message"]["model"] == recorded["body"]["model"]
