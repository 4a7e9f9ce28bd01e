"""Databricks: the Anthropic Messages endpoint by default, chat completions for /invocations endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.config import Config
from app.providers.databricks import ANTHROPIC_PATH, DatabricksChatProvider, DatabricksProvider, uses_chat_format
from tests.unit.providers.conftest import call, request

BASE = "https://adb-1.azuredatabricks.net/"


@pytest.mark.parametrize(("path", "api_format", "chat"), [
    ("", "", False),
    ("/serving-endpoints/anthropic/v1/messages", "", False),
    ("/serving-endpoints/my-llama/invocations", "", True),
    ("/serving-endpoints/my-llama/invocations/", "", True),
    ("/serving-endpoints/my-llama/invocations", "anthropic", False),
    ("", "openai", True),
])
def test_which_format_the_endpoint_takes(path: str, api_format: str, chat: bool) -> None:
    config = Config(databricks_endpoint_path=path, databricks_api_format=api_format)
    assert uses_chat_format(config) is chat
    assert DatabricksProvider.variant(config) is (DatabricksChatProvider if chat else DatabricksProvider)


def test_anthropic_format_url_token_and_model(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(DatabricksProvider, databricks_api_base=BASE, databricks_api_key="dapi1")
    upstream = provider.convert_request(request(), call(), stream=False)
    assert upstream.url == "https://adb-1.azuredatabricks.net" + ANTHROPIC_PATH
    assert upstream.headers["authorization"] == "Bearer dapi1"
    assert upstream.model == "databricks-claude-sonnet-4-5"
    assert make_provider(DatabricksProvider, databricks_api_base=BASE, databricks_api_key="k",
                         databricks_endpoint_path="serving-endpoints/x/v1/messages").url() == (
        "https://adb-1.azuredatabricks.net/serving-endpoints/x/v1/messages")


def test_missing_settings(make_provider: Callable[..., Any]) -> None:
    assert make_provider(DatabricksProvider).missing_settings() == ["DATABRICKS_API_BASE", "DATABRICKS_API_KEY"]
    assert make_provider(DatabricksChatProvider, databricks_api_base=BASE).missing_settings() == [
        "DATABRICKS_API_KEY"]


def test_chat_format_sends_to_the_endpoint_named_in_the_path(make_provider: Callable[..., Any]) -> None:
    path = "/serving-endpoints/my-llama/invocations"
    provider = make_provider(DatabricksChatProvider, databricks_api_base=BASE, databricks_api_key="dapi1",
                             databricks_endpoint_path=path)
    upstream = provider.convert_request(request(), call(), stream=True)
    assert upstream.url == "https://adb-1.azuredatabricks.net" + path
    assert upstream.model == "my-llama"
    assert upstream.body["model"] == "my-llama"
    assert upstream.body["messages"] == [{"role": "user", "content": "Hi"}]
    assert upstream.headers["authorization"] == "Bearer dapi1"
    assert provider.upstream_model("gpt-4o") == "gpt-4o"


def test_chat_format_model_default_wins_and_a_bare_format_uses_the_claude_endpoint(
        make_provider: Callable[..., Any]) -> None:
    provider = make_provider(DatabricksChatProvider, databricks_api_format="openai",
                             model_default="databricks-meta-llama")
    assert provider.upstream_model("claude-sonnet-4-5") == "databricks-meta-llama"
    assert make_provider(DatabricksChatProvider, databricks_api_format="openai").upstream_model(
        "claude-opus-4-5") == "databricks-claude-sonnet-4-5"
