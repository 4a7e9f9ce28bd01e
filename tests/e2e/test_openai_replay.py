"""Recorded Claude Code requests (``shared/fixtures/claude-code``) replayed through real gunicorn to
the strict fake OpenAI upstream: each one, translated to chat completions, must be accepted
(system turns, thinking, tool_use/tool_result pairs, ``ToolSearch``, effort and all) and the
answer must come back as a valid Anthropic stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.anthropic.events import validate_stream
from tests.conftest import FIXTURES
from tests.e2e.conftest import OPENAI_MAX_OUTPUT, OPENAI_MODEL, OPENAI_TOKEN, openai_env
from tests.e2e.helpers import Gateway
from tests.e2e.replay_helpers import RECORDED, RECORDED_IDS, gateway_for, replay
from tests.fakes.openai_rules import Strictness
from tests.fakes.openai_upstream import DEFAULT_TEXT, FakeOpenAIUpstream


def _env(provider: str, fake: FakeOpenAIUpstream) -> dict[str, str]:
    if provider == "openai":  # OpenAI's own provider: full URL, and the hashed ``user`` field
        return {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": fake.base_url + "/chat/completions",
                "OPENAI_MODEL": OPENAI_MODEL, "OPENAI_API_KEY": OPENAI_TOKEN, "FALLBACK_ENABLED": "false",
                "PROMPT_CACHE_ENABLED": "false"}
    return openai_env(fake)


@pytest.fixture(scope="module", params=["openai-compatible", "openai"])
def replay_target(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, FakeOpenAIUpstream]]:
    """One strict fake and one gateway per provider, for every recorded request."""
    with (FakeOpenAIUpstream(strict=True, token=OPENAI_TOKEN,
                             rules=Strictness(max_output_tokens=OPENAI_MAX_OUTPUT)) as fake,
          gateway_for(tmp_path_factory.mktemp("replay-openai"), None, **_env(request.param, fake)) as gateway):
        yield gateway, fake


def test_fixtures_are_present() -> None:
    """The recordings sit beside the repository (otherwise the replay below would test nothing)."""
    assert len(RECORDED) >= 10, f"expected recorded requests in {FIXTURES}"


@pytest.mark.parametrize("name", RECORDED, ids=RECORDED_IDS)
def test_recorded_request_is_accepted_by_openai(replay_target: tuple[Gateway, FakeOpenAIUpstream], name: str) -> None:
    """Sent with its recorded headers and ``?beta=true``: OpenAI would take the translation, and the
    default answer streams back valid and under the requested model name."""
    gateway, upstream = replay_target
    upstream.reset()

    recorded, seen = replay(gateway, name)

    [sent] = upstream.requests
    assert sent.rejected is None, f"OpenAI would answer 400: {sent.rejected}"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_TOKEN}"
    assert not any(h.startswith(("x-stainless-", "anthropic-")) or h in ("x-api-key", "x-app") for h in sent.headers)
    body = sent.body
    requested = recorded["body"]["model"]
    assert body["model"] == (requested if "claude" not in requested else OPENAI_MODEL)
    assert body["stream"] is True
    assert body["max_tokens"] <= OPENAI_MAX_OUTPUT
    assert "reasoning_effort" not in body, "gpt-4o takes no reasoning_effort"
    validate_stream(seen.events)
    assert seen.types[-1] == "message_stop"
    assert seen.text() == DEFAULT_TEXT
    assert seen.events[0]["message"]["model"] == requested
    assert seen.events[-2]["usage"]["input_tokens"] == 12, "input tokens from the usage chunk"
