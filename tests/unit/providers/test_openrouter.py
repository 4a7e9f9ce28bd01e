"""OpenRouter: attribution headers, reasoning as ``{effort}``, and its 200 error bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.errors import LynkrError
from app.providers.openrouter import OpenRouterProvider
from tests.unit.providers.conftest import call, request


def test_headers_and_model(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenRouterProvider, openrouter_api_key="or-1")
    upstream = provider.convert_request(request(), call(), stream=False)
    assert upstream.url == "https://openrouter.ai/api/v1/chat/completions"
    assert {k: upstream.headers[k] for k in ("authorization", "http-referer", "x-title")} == {
        "authorization": "Bearer or-1", "http-referer": "https://github.com/lynkr", "x-title": "Lynkr"}
    assert upstream.model == "openai/gpt-4o-mini"
    assert make_provider(OpenRouterProvider).missing_settings() == ["OPENROUTER_API_KEY"]


def test_thinking_becomes_openrouters_reasoning_object(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenRouterProvider, openrouter_api_key="k", openrouter_model="openai/gpt-5-mini")
    thinking = {"type": "enabled", "budget_tokens": 31_999}
    upstream = provider.convert_request(request(max_tokens=32_000, thinking=thinking), call(), stream=True)
    assert upstream.body["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in upstream.body


def test_an_error_in_a_200_body_is_an_anthropic_error(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenRouterProvider, openrouter_api_key="k")
    with pytest.raises(LynkrError) as raised:
        provider.message_from({"error": {"code": 429, "message": "Rate limit exceeded"}}, request(), call())
    assert (raised.value.status, raised.value.error_type, raised.value.provider) == (
        429, "rate_limit_error", "openrouter")
