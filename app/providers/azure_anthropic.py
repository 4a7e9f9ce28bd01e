"""Claude hosted on Azure AI Foundry, which speaks Anthropic Messages.

``AZURE_ANTHROPIC_ENDPOINT`` is the full ``…/anthropic/v1/messages`` URL; the key goes in
``x-api-key``; ``anthropic-version`` is ``AZURE_ANTHROPIC_VERSION`` when set, else the client's.
"""

from __future__ import annotations

from app.providers.anthropic_family import AnthropicFormatProvider
from app.providers.base import CallContext
from app.routing import is_claude_model


class AzureAnthropicProvider(AnthropicFormatProvider):
    name = "azure-anthropic"
    host = "azure-anthropic"
    default_model = "claude-sonnet-4-5"

    def missing_settings(self) -> list[str]:
        """The endpoint URL and key."""
        config = self.config
        return [env for env, value in (("AZURE_ANTHROPIC_ENDPOINT", config.azure_anthropic_endpoint),
                                       ("AZURE_ANTHROPIC_API_KEY", config.azure_anthropic_api_key)) if not value]

    def url(self) -> str:
        """The configured endpoint, as given."""
        return self.config.azure_anthropic_endpoint

    def auth_headers(self) -> dict[str, str]:
        """Azure takes the key in ``x-api-key``."""
        return {"x-api-key": self.config.azure_anthropic_api_key}

    def version(self, ctx: CallContext) -> str:
        """The configured version wins over the client's."""
        return self.config.azure_anthropic_version or super().version(ctx)

    def upstream_model(self, requested: str) -> str:
        """``AZURE_ANTHROPIC_MODEL`` first, then the shared mapping."""
        if self.config.azure_anthropic_model and is_claude_model(requested):
            return self.config.azure_anthropic_model
        return super().upstream_model(requested)

