"""Ollama: /api URLs however the endpoint is given, /api/show features cached, tools left out, NDJSON lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests
import responses
from responses import matchers

from app.anthropic.sse import EventTooLargeError
from app.providers.formats.ollama.show import ModelFeatures
from app.providers.ollama import OllamaProvider, ndjson_items
from tests.unit.providers.conftest import call, request

BASE = "http://ollama.test:11434"
READ = {"name": "Read", "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}}


@pytest.fixture
def provider(make_provider: Callable[..., Any]) -> OllamaProvider:
    return make_provider(OllamaProvider, ollama_endpoint=BASE, ollama_model="qwen2.5-coder:7b",
                         ollama_timeout_ms=90_000)


@pytest.mark.parametrize("endpoint", [BASE, BASE + "/", BASE + "/api", BASE + "/api/chat", BASE + "/api/chat/"])
def test_the_chat_url_however_the_endpoint_is_given(make_provider: Callable[..., Any], endpoint: str) -> None:
    assert make_provider(OllamaProvider, ollama_endpoint=endpoint).url() == BASE + "/api/chat"


def test_its_own_read_timeout_no_auth_and_defaults(provider: OllamaProvider,
                                                   make_provider: Callable[..., Any]) -> None:
    assert provider.http.timeout == (1.0, 90.0)
    assert provider.auth_headers() == {}
    assert provider.missing_settings() == []
    assert make_provider(OllamaProvider, ollama_endpoint="").missing_settings() == ["OLLAMA_ENDPOINT"]
    assert provider.upstream_model("claude-sonnet-4-5") == "qwen2.5-coder:7b"
    assert provider.upstream_model("llama3.1:8b") == "llama3.1:8b"


@responses.activate
def test_features_come_from_api_show_once_per_model(provider: OllamaProvider) -> None:
    show = responses.post(BASE + "/api/show", json={"capabilities": ["completion", "tools"]},
                          match=[matchers.json_params_matcher({"model": "qwen2.5-coder:7b"})])
    assert provider.features("qwen2.5-coder:7b") == ModelFeatures(True, False, "capabilities", vision=False)
    assert provider.supports_tools("claude-sonnet-4-5") is True
    assert provider.supports_thinking("qwen2.5-coder:7b") is False
    assert show.call_count == 1


@responses.activate
@pytest.mark.parametrize("answer", [
    {"body": requests.ConnectionError("Connection refused")},
    {"status": 404, "json": {"error": "model not found"}},
    {"status": 200, "body": "not json"},
])
def test_features_are_guessed_from_the_name_when_show_cannot_say(provider: OllamaProvider,
                                                                 answer: dict[str, Any]) -> None:
    responses.post(BASE + "/api/show", **answer)
    assert provider.features("qwen3:8b") == ModelFeatures(True, True, "name")
    assert provider.features("phi3:mini") == ModelFeatures(False, False, "name")


@responses.activate
def test_tools_and_think_are_left_out_for_a_model_that_takes_neither(provider: OllamaProvider) -> None:
    responses.post(BASE + "/api/show", json={"capabilities": ["completion"]})
    body = request(tools=[READ], thinking={"type": "enabled", "budget_tokens": 2000}, max_tokens=5000)
    upstream = provider.convert_request(body, call(), stream=True)
    assert upstream.url == BASE + "/api/chat"
    assert upstream.headers == {"content-type": "application/json", "accept": "application/x-ndjson",
                                "user-agent": "lynkr/0.1"}
    assert "tools" not in upstream.body
    assert "think" not in upstream.body
    assert upstream.body["stream"] is True
    assert provider.incompatibility(body, 10, False) == "tool_incompatible"
    assert provider.incompatibility(request(), 10, False) is None


@responses.activate
def test_tools_go_through_for_a_model_that_takes_them(provider: OllamaProvider) -> None:
    responses.post(BASE + "/api/show", json={"template": "{{ if .Tools }}tools{{ end }}"})
    upstream = provider.convert_request(request(tools=[READ]), call(), stream=False)
    assert upstream.body["tools"] == [{"type": "function", "function": {"name": "Read",
                                                                        "parameters": READ["input_schema"]}}]
    assert upstream.headers["accept"] == "application/json"
    assert upstream.body["stream"] is False


def test_errors_are_typed_and_a_missing_model_is_not_found(provider: OllamaProvider) -> None:
    missing = provider.error_for(404, b'{"error":"model \\"nope\\" not found, try pulling it first"}', {})
    assert (missing.status, missing.error_type, missing.provider) == (404, "not_found_error", "ollama")
    busy = provider.error_for(503, b"server busy", {})
    assert (busy.status, busy.error_type, busy.message) == (503, "overloaded_error", "server busy")


@responses.activate
def test_a_json_answer(provider: OllamaProvider) -> None:
    responses.post(BASE + "/api/chat", json={"model": "qwen2.5-coder:7b", "message": {"role": "assistant",
                                                                                      "content": "Hi there"},
                                             "done": True, "done_reason": "stop", "prompt_eval_count": 20,
                                             "eval_count": 3})
    reply = provider.send(request(), call())
    assert reply.message["content"] == [{"type": "text", "text": "Hi there"}]
    assert reply.message["id"] == "msg_abc123"
    assert reply.message["model"] == "claude-sonnet-4-5"
    assert (reply.message["stop_reason"], reply.message["usage"]["input_tokens"],
            reply.message["usage"]["output_tokens"]) == ("end_turn", 20, 3)


def test_ndjson_lines_split_across_reads_with_blank_lines_and_no_final_newline() -> None:
    chunks = [b'{"a":', b'1}\n\n{"b"', b':2}\n  \n{"c":3}']
    assert list(ndjson_items(chunks)) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_an_overlong_ndjson_line_is_refused_whole_or_in_pieces() -> None:
    line = orjson.dumps({"x": "y" * 100}) + b"\n"
    with pytest.raises(EventTooLargeError):
        list(ndjson_items([line], max_line_bytes=50))
    with pytest.raises(EventTooLargeError):
        list(ndjson_items([line[:30], line[30:60], line[60:]], max_line_bytes=50))
    assert list(ndjson_items([line], max_line_bytes=200)) == [{"x": "y" * 100}]


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def image_request() -> dict[str, Any]:
    return request(messages=[{"role": "user", "content": [IMAGE, {"type": "text", "text": "What is this?"}]}])


@responses.activate
def test_a_model_whose_capabilities_list_vision_gets_the_image(make_provider: Callable[..., Any]) -> None:
    # The capability table guesses qwen* has no vision; /api/show says this one has.
    provider = make_provider(OllamaProvider, ollama_endpoint=BASE, ollama_model="qwen2.5vl:7b")
    responses.post(BASE + "/api/show", json={"capabilities": ["completion", "vision"]})
    upstream = provider.convert_request(image_request(), call(), stream=False)
    assert upstream.body["messages"][-1] == {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}
    assert provider.supports_vision("claude-sonnet-4-5") is True
    assert provider.incompatibility(image_request(), 10, True) is None


@responses.activate
def test_a_model_whose_capabilities_lack_vision_gets_a_note(make_provider: Callable[..., Any]) -> None:
    # The capability table would let gemma* see (no row: the default); /api/show says it cannot.
    provider = make_provider(OllamaProvider, ollama_endpoint=BASE, ollama_model="gemma3:1b")
    responses.post(BASE + "/api/show", json={"capabilities": ["completion"]})
    upstream = provider.convert_request(image_request(), call(), stream=False)
    message = upstream.body["messages"][-1]
    assert "images" not in message
    assert message["content"].startswith("[image omitted")
    assert provider.incompatibility(image_request(), 10, True) == "vision_incompatible"


@responses.activate
def test_without_capabilities_the_table_decides_vision(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(OllamaProvider, ollama_endpoint=BASE, ollama_model="qwen2.5-coder:7b")
    responses.post(BASE + "/api/show", json={"template": "{{ .Prompt }}"})
    assert provider.supports_vision("qwen2.5-coder:7b") is False  # the *qwen* row
    assert provider.incompatibility(image_request(), 10, True) == "vision_incompatible"
