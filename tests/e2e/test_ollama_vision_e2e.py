"""Ollama vision from ``/api/show`` through ``lynkr serve``: Ollama first, Databricks (the fake) behind it.

A model whose capabilities list ``vision`` gets the image itself (the capability table alone would
have sent "[image omitted]" to a ``qwen*`` model); one whose capabilities lack it is passed over for
the next candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body
from tests.e2e.test_routing_e2e import hybrid_env
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.ollama_upstream import FakeOllama

pytestmark = pytest.mark.slow
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
SEEING = "qwen2.5vl:7b"
BLIND = "qwen2.5-coder:7b"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(capabilities=["completion", "tools"]) as fake:
        fake.capabilities_by_model[SEEING] = ["completion", "tools", "vision"]
        yield fake


def image_body(model: str) -> dict[str, Any]:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    return {**message_body(), "model": model,
            "messages": [{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}]}


def post(gateway: Gateway, body: dict[str, Any]) -> requests.Response:
    return requests.post(gateway.url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS, timeout=30)


def test_images_go_to_an_ollama_model_that_says_it_sees(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                                        mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(**hybrid_env(ollama.url, API_RETRY_MAX_RETRIES=0))

    seen = post(gateway, image_body(SEEING))
    assert seen.status_code == 200, seen.text
    assert seen.headers["x-lynkr-provider"] == "ollama"
    [chat] = ollama.chat_requests()
    assert chat.body["messages"][-1]["images"] == [PIXEL]
    assert "[image omitted" not in chat.body["messages"][-1]["content"]

    blind = post(gateway, image_body(BLIND))
    assert blind.status_code == 200, blind.text
    assert blind.headers["x-lynkr-provider"] == "databricks"  # passed over: its capabilities lack vision
    assert len(ollama.chat_requests()) == 1
    assert len(mocked_upstream.message_requests()) == 1
