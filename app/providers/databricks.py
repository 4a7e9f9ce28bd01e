"""Databricks serving endpoints (the default provider).

With ``DATABRICKS_ENDPOINT_PATH`` unset (or ``DATABRICKS_API_FORMAT=anthropic``) requests go
to the workspace's Anthropic Messages endpoint, ``/serving-endpoints/anthropic/v1/messages``,
with a bearer token. A ``/serving-endpoints/<name>/invocations`` path (the Node Lynkr's
documented form, for Claude and other models alike) or ``DATABRICKS_API_FORMAT=openai`` selects
chat completions; the model is then the endpoint's name unless ``MODEL_DEFAULT`` says otherwise.
"""

from __future__ import annotations

import re

from app.config import Config
from app.providers.anthropic_family import AnthropicFormatProvider
from app.providers.base import Provider
from app.providers.formats.openai_chat.convert import ChatDialect
from app.providers.openai_family import OpenAIChatProvider

ANTHROPIC_PATH = "/serving-endpoints/anthropic/v1/messages"
_ENDPOINT_NAME = re.compile(r"/serving-endpoints/([^/]+)/invocations/?$")


def uses_chat_format(config: Config) -> bool:
    """Whether the configured endpoint takes chat completions rather than Anthropic Messages."""
    if config.databricks_api_format:
        return config.databricks_api_format == "openai"
    return bool(_ENDPOINT_NAME.search(config.databricks_endpoint_path))


class _DatabricksSettings:
    """What both Databricks formats share: settings, URL and bearer token."""

    config: Config

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


class DatabricksProvider(_DatabricksSettings, AnthropicFormatProvider):
    name = "databricks"
    host = "databricks"
    default_model = "databricks-claude-sonnet-4-5"

    @classmethod
    def variant(cls, config: Config) -> type[Provider]:
        """The chat-completions class for ``/invocations`` endpoints."""
        return DatabricksChatProvider if uses_chat_format(config) else cls


class DatabricksChatProvider(_DatabricksSettings, OpenAIChatProvider):
    name = "databricks"
    dialect = ChatDialect(name="databricks")

    def upstream_model(self, requested: str) -> str:
        """Claude names → ``MODEL_DEFAULT``, else the serving endpoint's name."""
        match = _ENDPOINT_NAME.search(self.config.databricks_endpoint_path)
        endpoint = match.group(1) if match else "databricks-claude-sonnet-4-5"
        return self.mapped(requested, self.config.model_default or endpoint)
