"""OpenAI: the key, the endpoint and OPENAI_MODEL for Claude names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.providers.openai import OpenAIProvider
from tests.unit.providers.conftest import call, request


def test_the_key_is_required(make_provider: Callable[..., Any]) -> None:
    assert make_provider(OpenAIProvider).missing_settings() == ["OPENAI_API_KEY"]
    assert make_provider(OpenAIProvider, openai_api_key="sk").missing_settings() == []


def test_request_url_auth_and_model(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenAIProvider, openai_api_key="sk-1", openai_model="gpt-4.1")
    upstream = provider.convert_request(request(metadata={"user_id": "u1"}), call(), stream=False)
    assert upstream.url == "https://api.openai.com/v1/chat/completions"
    assert upstream.headers["authorization"] == "Bearer sk-1"
    assert upstream.model == "gpt-4.1"
    assert upstream.body["user"] == "bb82030dbc2bcaba32a90bf2e207a84a856fc5f033b77c480836ab6f77f40f19"
    assert provider.upstream_model("o3-mini") == "o3-mini"
    assert make_provider(OpenAIProvider, openai_endpoint="http://proxy/v1/chat/completions").url() == (
        "http://proxy/v1/chat/completions")
