"""A client's ``max_tokens`` above the model's output limit is clamped, and the clamp is logged once.

One case per format family: chat completions (OpenAI), Anthropic Messages (Databricks) and
Ollama's ``/api/chat``. The warning names the requested and allowed values and the model, and
carries the request id like every other line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import responses

from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request
from tests.integration.test_messages_openai import PROVIDERS, make_completion
from tests.integration.test_ollama_provider import CHAT_URL, ENDPOINT, MODEL, make_answer


@dataclass(frozen=True)
class Family:
    """A provider of one format family, the model it calls, and where its body carries the limit."""

    settings: dict[str, Any]
    url: str
    answer: dict[str, Any]
    model: str
    limit: int
    sent_max_tokens: Any  # reads the clamped value from the upstream body


FAMILIES = {
    "openai": Family({"model_provider": "openai", **PROVIDERS["openai"][0]}, PROVIDERS["openai"][1],
                     make_completion(), "gpt-4o", 16_384, lambda body: body["max_tokens"]),
    "databricks": Family({"model_provider": "databricks"}, DATABRICKS_URL, make_message(),
                         "databricks-claude-sonnet-4-5", 64_000, lambda body: body["max_tokens"]),
    "ollama": Family({"model_provider": "ollama", "ollama_endpoint": ENDPOINT, "ollama_model": MODEL}, CHAT_URL,
                     make_answer(), MODEL, 8_192, lambda body: body["options"]["num_predict"]),
}


def clamp_lines(err: str) -> list[dict[str, Any]]:
    """The JSON log records about a clamped ``max_tokens``."""
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [r for r in records if "requested_max_tokens" in r]


def send(make_app: Any, family: Family, max_tokens: int) -> tuple[Any, dict[str, Any]]:
    """One request through the family's provider; the response and the upstream body."""
    client = make_app(fallback_enabled=False, **family.settings).test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(family.url, json=family.answer)
        response = client.post("/v1/messages", json=make_request(max_tokens=max_tokens))
        sent = json.loads(mocked.calls[0].request.body)
    assert response.status_code == 200
    return response, sent


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_clamp_is_logged_with_both_values_and_the_model(make_app: Any, capsys: Any, name: str) -> None:
    family = FAMILIES[name]
    wanted = family.limit + 1000
    response, sent = send(make_app, family, wanted)
    assert family.sent_max_tokens(sent) == family.limit
    [line] = clamp_lines(capsys.readouterr().err)
    assert line["level"] == "WARNING"
    assert line["message"] == f"max_tokens {wanted} clamped to {family.limit}, the output limit of {family.model}"
    assert (line["requested_max_tokens"], line["allowed_max_tokens"]) == (wanted, family.limit)
    assert line["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_max_tokens_within_the_limit_is_not_logged(make_app: Any, capsys: Any, name: str) -> None:
    family = FAMILIES[name]
    _, sent = send(make_app, family, family.limit)
    assert family.sent_max_tokens(sent) == family.limit
    assert clamp_lines(capsys.readouterr().err) == []


def test_a_model_clamped_again_is_not_logged_again(make_app: Any, capsys: Any) -> None:
    family = FAMILIES["openai"]
    client = make_app(fallback_enabled=False, **family.settings).test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(family.url, json=family.answer)
        for turn in range(3):  # different prompts, so the prompt cache answers none of them
            body = make_request(max_tokens=family.limit + 1, messages=[{"role": "user", "content": f"turn {turn}"}])
            assert client.post("/v1/messages", json=body).status_code == 200
        sent = [json.loads(call.request.body) for call in mocked.calls]
    assert [family.sent_max_tokens(body) for body in sent] == [family.limit] * 3
    assert len(clamp_lines(capsys.readouterr().err)) == 1
