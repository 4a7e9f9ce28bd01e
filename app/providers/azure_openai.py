"""Azure OpenAI: a deployment's chat-completions URL, the key in ``api-key``.

The model in the body is ignored by Azure (the deployment decides), so capabilities are looked
up by the deployment name; name deployments after their model (``gpt-5-mini``) to get its limits.
"""

from __future__ import annotations

from urllib.parse import quote

from app.providers.formats.openai_chat.convert import ChatDialect
from app.providers.openai_family import OpenAIChatProvider


class AzureOpenAIProvider(OpenAIChatProvider):
    name = "azure-openai"
    dialect = ChatDialect(name="azure-openai")

    def missing_settings(self) -> list[str]:
        """Endpoint, key and deployment."""
        config = self.config
        return [env for env, value in (("AZURE_OPENAI_ENDPOINT", config.azure_openai_endpoint),
                                       ("AZURE_OPENAI_API_KEY", config.azure_openai_api_key),
                                       ("AZURE_OPENAI_DEPLOYMENT", config.azure_openai_deployment)) if not value]

    def url(self) -> str:
        """``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…``."""
        config = self.config
        endpoint = config.azure_openai_endpoint.rstrip("/")
        if "/chat/completions" in endpoint:
            return endpoint
        deployment = quote(config.azure_openai_deployment, safe="")
        return (f"{endpoint}/openai/deployments/{deployment}/chat/completions"
                f"?api-version={quote(config.azure_openai_api_version, safe='')}")

    def auth_headers(self) -> dict[str, str]:
        """Azure takes the key in ``api-key``."""
        return {"api-key": self.config.azure_openai_api_key}

    def upstream_model(self, requested: str) -> str:
        """Claude names → the deployment; other names pass through."""
        return self.mapped(requested, self.config.azure_openai_deployment)
