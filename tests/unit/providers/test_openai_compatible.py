"""OpenAI-compatible servers: base or full URL, optional key, no ``user`` field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.providers.openai_compatible import OpenAICompatibleProvider
from tests.unit.providers.conftest import call, request


def test_endpoint_and_model_are_required(make_provider: Callable[..., Any]) -> None:
    assert make_provider(OpenAICompatibleProvider).missing_settings() == [
        "OPENAI_COMPATIBLE_ENDPOINT", "OPENAI_COMPATIBLE_MODEL"]


def test_a_base_gets_the_chat_path_and_no_key_means_no_auth(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenAICompatibleProvider, openai_compatible_endpoint="http://127.0.0.1:8000/v1/",
                             openai_compatible_model="qwen2.5-coder")
    upstream = provider.convert_request(request(metadata={"user_id": "u1"}), call(), stream=False)
    assert upstream.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert "authorization" not in upstream.headers
    assert "user" not in upstream.body
    assert upstream.model == "qwen2.5-coder"


def test_a_full_url_and_a_key(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenAICompatibleProvider,
                             openai_compatible_endpoint="http://h/v1/chat/completions",
                             openai_compatible_model="m", openai_compatible_api_key="local")
    assert provider.url() == "http://h/v1/chat/completions"
    assert provider.auth_headers() == {"authorization": "Bearer local"}
    assert provider.upstream_model("claude-haiku-4-5") == "m"
    assert provider.upstream_model("other") == "other"


def test_a_model_the_table_does_not_know_is_never_refused_for_its_size(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenAICompatibleProvider, openai_compatible_endpoint="http://h/v1",
                             openai_compatible_model="my-finetune-7b")
    assert provider.incompatibility(request(), 5_000_000, False) is None
    assert provider.context_window_text("my-finetune-7b") == "unknown — the upstream decides"


def test_a_known_model_keeps_the_local_check(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OpenAICompatibleProvider, openai_compatible_endpoint="http://h/v1",
                             openai_compatible_model="gpt-4o")
    assert provider.incompatibility(request(), 128_000, False) is None
    assert provider.incompatibility(request(), 128_001, False) == "context_too_long"
    assert provider.context_window_text("gpt-4o") == "128000 tokens"
