"""The chat-completions family: per-call dialect, answers and errors in Anthropic terms, [DONE], URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import responses

from app.anthropic.events import StreamBuilder
from app.errors import LynkrError
from app.providers.openai import OpenAIProvider
from app.providers.openai_family import GEMINI_REJECTED_KEYWORDS, chat_url
from tests.unit.providers.conftest import call, request

URL = "https://api.openai.com/v1/chat/completions"
SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
          "properties": {"url": {"type": "string", "format": "uri"}}}


@pytest.fixture
def provider(make_provider: Callable[..., Any]) -> OpenAIProvider:
    return make_provider(OpenAIProvider, openai_api_key="sk", openai_model="gpt-4o")


@pytest.mark.parametrize(("endpoint", "url"), [
    ("http://h/v1", "http://h/v1/chat/completions"),
    ("http://h/v1/", "http://h/v1/chat/completions"),
    ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ("http://h/v1/chat/completions/", "http://h/v1/chat/completions"),
])
def test_chat_url(endpoint: str, url: str) -> None:
    assert chat_url(endpoint) == url


def test_headers_and_the_stream_flag(provider: OpenAIProvider) -> None:
    streamed = provider.convert_request(request(), call(), stream=True)
    assert streamed.headers == {"content-type": "application/json", "accept": "text/event-stream",
                                "user-agent": "lynkr/0.1", "authorization": "Bearer sk"}
    assert streamed.body["stream"] is True
    plain = provider.convert_request(request(), call(), stream=False)
    assert plain.headers["accept"] == "application/json"
    assert "stream" not in plain.body


def test_gemini_models_lose_the_schema_keywords_they_reject(provider: OpenAIProvider) -> None:
    tool = {"name": "Fetch", "input_schema": SCHEMA}
    gemini = provider.convert_request(request(tools=[tool]), call("google/gemini-2.5-pro"), stream=False)
    assert gemini.body["tools"][0]["function"]["parameters"] == {
        "type": "object", "properties": {"url": {"type": "string"}}}
    other = provider.convert_request(request(tools=[tool]), call(), stream=False)
    assert other.body["tools"][0]["function"]["parameters"] == {
        "type": "object", "additionalProperties": False, "properties": {"url": {"type": "string", "format": "uri"}}}
    assert {"$schema", "format", "additionalProperties"} <= GEMINI_REJECTED_KEYWORDS


def test_send_user_id_off_drops_the_user_field(make_provider: Callable[..., Any]) -> None:
    body = request(metadata={"user_id": "u1"})
    on = make_provider(OpenAIProvider, openai_api_key="k").convert_request(body, call(), stream=False)
    off = make_provider(OpenAIProvider, openai_api_key="k", send_user_id=False).convert_request(
        body, call(), stream=False)
    assert len(on.body["user"]) == 64
    assert "user" not in off.body


def test_an_answer_becomes_a_message_with_an_id_from_the_request(provider: OpenAIProvider) -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    message = provider.message_from(body, request(), call("claude-x"))
    assert (message["id"], message["model"], message["content"], message["stop_reason"]) == (
        "msg_abc123", "claude-x", [{"type": "text", "text": "Hi"}], "end_turn")
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (5, 1)


def test_a_body_without_choices_is_an_error(provider: OpenAIProvider) -> None:
    with pytest.raises(LynkrError) as raised:
        provider.message_from({"error": {"message": "bad gateway", "code": 502}}, request(), call())
    assert (raised.value.status, raised.value.error_type, raised.value.message, raised.value.provider) == (
        500, "api_error", "bad gateway", "openai")


def test_errors_typed_by_status_and_overflow_in_anthropics_wording(provider: OpenAIProvider) -> None:
    overflow = provider.error_for(400, orjson.dumps({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                   "130001 tokens.", "code": "context_length_exceeded"}}), {})
    assert (overflow.status, overflow.error_type, overflow.message) == (
        400, "invalid_request_error", "prompt is too long: 130001 tokens > 128000 maximum")
    quota = provider.error_for(429, orjson.dumps({"error": {"message": "You exceeded your quota",
                                                            "code": "insufficient_quota"}}), {"retry-after": "1"})
    assert (quota.status, quota.error_type, quota.headers) == (402, "billing_error", {"retry-after": "1"})
    text = provider.error_for(502, b"<html>Bad Gateway</html>", {})
    assert (text.status, text.error_type, text.message) == (500, "api_error", "<html>Bad Gateway</html>")


@responses.activate
def test_a_stream_ends_at_done(provider: OpenAIProvider) -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
              {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}]
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    responses.post(URL, body=body, content_type="text/event-stream")
    stream = provider.open_stream(request(), call())
    translator = stream.translator(StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5"))
    events = [event for item in stream.items for event in translator.feed(item)] + translator.close()
    stream.release()
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop", "message_delta",
                                           "message_stop"]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == "Hello"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["output_tokens"] == 2
