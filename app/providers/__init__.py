"""The provider registry: ``MODEL_PROVIDER`` names → provider classes."""

from __future__ import annotations

from app.config import Config
from app.providers._http import HttpClient
from app.providers.azure_anthropic import AzureAnthropicProvider
from app.providers.azure_openai import AzureOpenAIProvider
from app.providers.base import Provider
from app.providers.capabilities import CapabilityTable
from app.providers.databricks import DatabricksProvider
from app.providers.ollama import OllamaProvider
from app.providers.openai import OpenAIProvider
from app.providers.openai_compatible import OpenAICompatibleProvider
from app.providers.openrouter import OpenRouterProvider

PROVIDERS: dict[str, type[Provider]] = {
    "databricks": DatabricksProvider,
    "azure-anthropic": AzureAnthropicProvider,
    "azure-openai": AzureOpenAIProvider,
    "openai": OpenAIProvider,
    "openrouter": OpenRouterProvider,
    "openai-compatible": OpenAICompatibleProvider,
    "ollama": OllamaProvider,
}


class UnknownProviderError(KeyError):
    """No provider is registered under that name."""


def provider_class(name: str) -> type[Provider]:
    """The class registered for ``name``."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProviderError(name) from None


def build_providers(config: Config, capabilities: CapabilityTable) -> dict[str, Provider]:
    """One instance per registered provider, each with its own connection pool."""
    built = {}
    for name, cls in PROVIDERS.items():
        http = HttpClient(name, pool_size=config.threads, connect_timeout_s=config.connect_timeout_ms / 1000,
                          read_timeout_s=config.upstream_timeout_ms / 1000)
        built[name] = cls.variant(config)(config, capabilities, http)
    return built
