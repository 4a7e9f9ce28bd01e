"""Structured outputs (``output_config.format``) through ``lynkr serve``, to strict fake upstreams.

A chat-completions target gets ``response_format: {type: json_schema}``; Databricks, whose Anthropic
endpoint rejects ``output_config``, gets the request without it (its profile does not take them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.conftest import openai_env
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_chunks import completion
from tests.fakes.openai_upstream import JsonReply

pytestmark = pytest.mark.slow
SCHEMA = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"],
          "additionalProperties": False}


def structured_body() -> dict[str, Any]:
    return {**message_body("The capital of Canada, as JSON."),
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}


def post(gateway: Gateway, body: dict[str, Any]) -> requests.Response:
    return requests.post(gateway.url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS, timeout=30)


def test_a_chat_completions_target_gets_a_json_schema_response_format(make_gateway: Callable[..., Gateway],
                                                                       openai_upstream: Any) -> None:
    gateway = make_gateway(**openai_env(openai_upstream))
    openai_upstream.script(JsonReply(body=completion('{"capital": "Ottawa"}')))
    response = post(gateway, structured_body())
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": '{"capital": "Ottawa"}'}]
    [sent] = openai_upstream.chat_requests()
    assert sent.body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output",
                                                                                 "schema": SCHEMA}}


def test_databricks_gets_the_request_without_what_it_rejects(make_gateway: Callable[..., Gateway],
                                                             mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway()
    response = post(gateway, structured_body())
    assert response.status_code == 200, response.text  # the strict fake answers 400 to output_config
    [sent] = mocked_upstream.message_requests()
    assert "output_config" not in sent.body
