"""Azure OpenAI: the deployment's URL with its API version, the key in api-key, the deployment as model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.providers.azure_openai import AzureOpenAIProvider
from tests.unit.providers.conftest import call, request

SETTINGS = {"azure_openai_endpoint": "https://res.openai.azure.com/", "azure_openai_api_key": "az-key",
            "azure_openai_deployment": "gpt 5/mini"}


def test_missing_settings(make_provider: Callable[..., Any]) -> None:
    assert make_provider(AzureOpenAIProvider).missing_settings() == [
        "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT"]
    assert make_provider(AzureOpenAIProvider, **SETTINGS).missing_settings() == []


def test_the_url_is_built_from_deployment_and_version_quoted(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AzureOpenAIProvider, **SETTINGS, azure_openai_api_version="2025-01-01 preview")
    assert provider.url() == ("https://res.openai.azure.com/openai/deployments/gpt%205%2Fmini/chat/completions"
                              "?api-version=2025-01-01%20preview")


def test_a_full_chat_completions_url_is_kept(make_provider: Callable[..., Any]) -> None:
    full = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
    assert make_provider(AzureOpenAIProvider, **{**SETTINGS, "azure_openai_endpoint": full}).url() == full


def test_key_header_and_model(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AzureOpenAIProvider, **{**SETTINGS, "azure_openai_deployment": "gpt-5-mini"})
    upstream = provider.convert_request(request(max_tokens=500), call(), stream=False)
    assert upstream.headers["api-key"] == "az-key"
    assert "authorization" not in upstream.headers
    assert upstream.model == "gpt-5-mini"
    assert upstream.body["max_completion_tokens"] == 500  # limits follow the deployment's name
    assert provider.upstream_model("gpt-4o") == "gpt-4o"
