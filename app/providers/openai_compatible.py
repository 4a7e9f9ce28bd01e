"""Any OpenAI-compatible server: llama.cpp, vLLM, LM Studio.

``OPENAI_COMPATIBLE_ENDPOINT`` may be a base (``http://127.0.0.1:8000/v1``) or the full
chat-completions URL; the key is optional. These servers do not take OpenAI's ``user`` field
reliably, so it is not sent.
"""

from __future__ import annotations

from app.providers.formats.openai_chat.convert import ChatDialect
from app.providers.openai_family import OpenAIChatProvider, chat_url


class OpenAICompatibleProvider(OpenAIChatProvider):
    name = "openai-compatible"
    dialect = ChatDialect(name="openai-compatible", send_user=False)

    def missing_settings(self) -> list[str]:
        """The server's URL and the model it serves."""
        config = self.config
        return [env for env, value in (("OPENAI_COMPATIBLE_ENDPOINT", config.openai_compatible_endpoint),
                                       ("OPENAI_COMPATIBLE_MODEL", config.openai_compatible_model)) if not value]

    def url(self) -> str:
        """The chat-completions URL under the configured base."""
        return chat_url(self.config.openai_compatible_endpoint)

    def auth_headers(self) -> dict[str, str]:
        """Bearer key when one is configured."""
        key = self.config.openai_compatible_api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def upstream_model(self, requested: str) -> str:
        """Claude names → ``OPENAI_COMPATIBLE_MODEL``; other names pass through."""
        return self.mapped(requested, self.config.openai_compatible_model)
