"""OpenRouter: chat completions with attribution headers and ``reasoning: {effort}``.

OpenRouter answers some failures with HTTP 200 and a body holding ``error`` and no
``choices``; the format module turns those into Anthropic errors.
"""

from __future__ import annotations

from app.providers.formats.openai_chat.convert import ChatDialect
from app.providers.openai_family import OpenAIChatProvider


class OpenRouterProvider(OpenAIChatProvider):
    name = "openrouter"
    # Gemini models lose more schema keywords in OpenAIChatProvider.chat_dialect.
    dialect = ChatDialect(name="openrouter", reasoning="openrouter")

    def missing_settings(self) -> list[str]:
        """The API key."""
        return [] if self.config.openrouter_api_key else ["OPENROUTER_API_KEY"]

    def url(self) -> str:
        """``OPENROUTER_ENDPOINT``."""
        return self.config.openrouter_endpoint

    def auth_headers(self) -> dict[str, str]:
        """Bearer key plus OpenRouter's app attribution headers."""
        return {"authorization": f"Bearer {self.config.openrouter_api_key}",
                "http-referer": self.config.openrouter_referer, "x-title": self.config.openrouter_title}

    def upstream_model(self, requested: str) -> str:
        """Claude names → ``OPENROUTER_MODEL``; other names pass through."""
        return self.mapped(requested, self.config.openrouter_model)
