"""OpenAI's chat completions API (or any endpoint given as ``OPENAI_ENDPOINT``)."""

from __future__ import annotations

from app.providers.formats.openai_chat.convert import ChatDialect
from app.providers.openai_family import OpenAIChatProvider


class OpenAIProvider(OpenAIChatProvider):
    name = "openai"
    dialect = ChatDialect(name="openai")

    def missing_settings(self) -> list[str]:
        """The API key."""
        return [] if self.config.openai_api_key else ["OPENAI_API_KEY"]

    def url(self) -> str:
        """``OPENAI_ENDPOINT``, the full chat-completions URL."""
        return self.config.openai_endpoint

    def auth_headers(self) -> dict[str, str]:
        """Bearer key."""
        return {"authorization": f"Bearer {self.config.openai_api_key}"}

    def upstream_model(self, requested: str) -> str:
        """Claude names → ``OPENAI_MODEL``; other names pass through."""
        return self.mapped(requested, self.config.openai_model)
