"""Databricks serving endpoints (the default provider).

With ``DATABRICKS_ENDPOINT_PATH`` unset (or ``DATABRICKS_API_FORMAT=anthropic``) requests go
to the workspace's Anthropic Messages endpoint, ``/serving-endpoints/anthropic/v1/messages``,
with a bearer token. A ``/serving-endpoints/<name>/invocations`` path is a chat-completions
endpoint.
"""

from __future__ import annotations

from app.providers.anthropic_family import AnthropicFormatProvider

ANTHROPIC_PATH = "/serving-endpoints/anthropic/v1/messages"


class DatabricksProvider(AnthropicFormatProvider):
    name = "databricks"
    host = "databricks"
    default_model = "databricks-claude-sonnet-4-5"

    def missing_settings(self) -> list[str]:
        """The workspace URL and token."""
        config = self.config
        return [env for env, value in (("DATABRICKS_API_BASE", config.databricks_api_base),
                                       ("DATABRICKS_API_KEY", config.databricks_api_key)) if not value]

    def url(self) -> str:
        """``{base}{path}``, the Anthropic Messages path unless configured."""
        path = self.config.databricks_endpoint_path or ANTHROPIC_PATH
        return self.config.databricks_api_base.rstrip("/") + "/" + path.lstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """Bearer personal access token."""
        return {"authorization": f"Bearer {self.config.databricks_api_key}"}
