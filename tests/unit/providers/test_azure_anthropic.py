"""Azure AI Foundry's Claude: settings, endpoint as given, x-api-key, the configured version and model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.errors import ProviderNotConfiguredError
from app.providers.azure_anthropic import AzureAnthropicProvider
from tests.unit.providers.conftest import call, request

ENDPOINT = "https://res.services.ai.azure.com/anthropic/v1/messages"


def test_missing_settings_are_named(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AzureAnthropicProvider)
    assert provider.missing_settings() == ["AZURE_ANTHROPIC_ENDPOINT", "AZURE_ANTHROPIC_API_KEY"]
    with pytest.raises(ProviderNotConfiguredError, match="set AZURE_ANTHROPIC_ENDPOINT, AZURE_ANTHROPIC_API_KEY"):
        provider.ensure_configured()
    assert make_provider(AzureAnthropicProvider, azure_anthropic_endpoint=ENDPOINT,
                         azure_anthropic_api_key="k").missing_settings() == []


def test_the_request_goes_to_the_endpoint_with_the_key_and_the_hosts_betas(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AzureAnthropicProvider, azure_anthropic_endpoint=ENDPOINT, azure_anthropic_api_key="k")
    upstream = provider.convert_request(
        request(), call(anthropic_version="2023-06-01",
                        anthropic_beta="context-management-2025-06-27,claude-code-20250219"), stream=False)
    assert upstream.url == ENDPOINT
    assert upstream.headers["x-api-key"] == "k"
    assert "authorization" not in upstream.headers
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["anthropic-beta"] == "context-management-2025-06-27"
    assert upstream.model == "claude-sonnet-4-5"


def test_configured_version_and_model_win(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AzureAnthropicProvider, azure_anthropic_endpoint=ENDPOINT, azure_anthropic_api_key="k",
                             azure_anthropic_version="2025-01-01", azure_anthropic_model="claude-opus-4-5-deploy")
    upstream = provider.convert_request(request(), call(anthropic_version="2023-06-01"), stream=True)
    assert upstream.headers["anthropic-version"] == "2025-01-01"
    assert upstream.model == "claude-opus-4-5-deploy"
    assert upstream.body["model"] == "claude-opus-4-5-deploy"
    assert provider.upstream_model("my-own-model") == "my-own-model"
