"""What every provider shares: images, SSE items, incompatibility, error shapes, send and open_stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import responses

from app.anthropic.events import StreamBuilder
from app.anthropic.sse import EventTooLargeError, FramedEvent
from app.config import Config
from app.errors import LynkrError, ProviderNotConfiguredError, UpstreamError
from app.providers._http import HttpClient
from app.providers.base import (
    CallContext,
    Provider,
    UpstreamRequest,
    _error_message,
    anthropic_error_body,
    has_images,
    sse_items,
)
from app.providers.capabilities import CapabilityTable
from app.providers.formats.anthropic import StreamTranslator
from tests.unit.providers.conftest import call, request

URL = "https://plain.example/v1/messages"
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


class Plain(Provider):
    """The smallest provider: Anthropic's format at one URL, its key in a header."""

    name = "plain"
    default_model = "plain-large"

    def missing_settings(self) -> list[str]:
        return [] if self.config.azure_anthropic_api_key else ["AZURE_ANTHROPIC_API_KEY"]

    def url(self) -> str:
        return URL

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.config.azure_anthropic_api_key}

    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        model = self.model_for(ctx)
        return UpstreamRequest(URL, self.auth_headers(), {**request, "model": model, "stream": stream}, model)

    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {**body, "model": ctx.requested_model}

    def translator(self, builder: StreamBuilder, request: dict[str, Any], model: str) -> Any:
        return StreamTranslator(builder)


def plain(capabilities: CapabilityTable | None = None, **config: Any) -> Plain:
    settings = {"azure_anthropic_api_key": "sk-ant-plain-0123456789", **config}
    http = HttpClient("plain", pool_size=1, connect_timeout_s=1.0, read_timeout_s=2.0)
    return Plain(Config(**settings), capabilities or CapabilityTable(), http)


def test_has_images_in_a_message_or_a_tool_result_only() -> None:
    assert has_images({"messages": [{"role": "user", "content": [IMAGE]}]}) is True
    assert has_images({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "x"}, IMAGE]}]}]})
    assert has_images({"messages": [{"role": "user", "content": "an image of a cat"}]}) is False
    assert has_images({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "image"}]}]}) is False
    assert has_images({}) is False


def test_sse_items_parse_json_data_and_done() -> None:
    body = (b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
            b": keepalive\n\n"
            b"data: {\"n\":1}\r\n\r\n"
            b"data: [DONE]\n\n")

    assert list(sse_items([body])) == [{"type": "message_start"}, {"n": 1}, "[DONE]"]


def test_framed_sse_items_keep_the_bytes_of_whole_json_objects() -> None:
    start = b'data: {"type":"message_start"}\n\n'
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0}\n\n'
    items = list(sse_items([start, delta + b"event: x\ndata: [1]\n\n"], framed=True))

    assert items == [{"type": "message_start"}, {"type": "content_block_delta", "index": 0}, [1]]
    assert not isinstance(items[0], FramedEvent)  # no event line: its bytes are not what we would send
    assert isinstance(items[1], FramedEvent)
    assert items[1].frame == delta
    assert not any(isinstance(item, FramedEvent) for item in sse_items([start, delta]))  # not asked for


def test_sse_items_refuse_an_event_over_the_limit() -> None:
    body = b"data: {\"text\":\"" + b"x" * 200 + b"\"}\n\n"

    with pytest.raises(EventTooLargeError):
        list(sse_items([body], max_event_bytes=64))


def test_sse_items_hand_out_what_came_before_an_oversized_line_in_the_same_read() -> None:
    body = b'data: {"n": 1}\n\n' + b"data: " + b"x" * 100 + b"\n\n"
    items = sse_items([body], max_event_bytes=64)

    assert next(items) == {"n": 1}
    with pytest.raises(EventTooLargeError):
        next(items)


def test_sse_items_raise_on_data_that_is_not_json() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        list(sse_items([b"data: {not json\n\n"]))


def test_incompatibility_reasons() -> None:
    caps = CapabilityTable({"plain-blind": {"vision": False, "context_window": 1_000},
                            "plain-small": {"context_window": 1_000}})
    provider = plain(caps)
    with_image = {"model": "plain-blind", "messages": [{"role": "user", "content": [IMAGE]}]}
    text = {"model": "plain-small", "messages": [{"role": "user", "content": "hi"}]}

    assert provider.incompatibility(with_image, 10, images=True) == "vision_incompatible"
    assert provider.incompatibility(text, 1_001, images=False) == "context_too_long"
    assert provider.incompatibility(text, 1_000, images=False) is None
    assert provider.incompatibility(text, 10, images=True) is None
    # A routing rule's model is judged, not the mapped one.
    assert provider.incompatibility(text, 10, images=True, model="plain-blind") == "vision_incompatible"
    # A model the table does not know has no window: the upstream decides.
    assert provider.incompatibility({"model": "mystery"}, 10_000_000, images=False) is None


def test_claude_names_map_to_the_default_and_a_rule_overrides() -> None:
    provider = plain()

    assert provider.upstream_model("claude-sonnet-4-5") == "plain-large"
    assert provider.upstream_model("my-own-model") == "my-own-model"
    assert plain(model_default="plain-xl").upstream_model("claude-opus-4-5") == "plain-xl"
    assert provider.model_for(call(model_override="plain-tiny")) == "plain-tiny"
    assert provider.model_for(call()) == "plain-large"


def test_an_unconfigured_provider_names_what_to_set() -> None:
    provider = plain(azure_anthropic_api_key="")

    assert provider.configured is False
    with pytest.raises(ProviderNotConfiguredError) as caught:
        provider.ensure_configured()

    assert caught.value.message == ("Provider 'plain' is not configured: set AZURE_ANTHROPIC_API_KEY "
                                    "(see .env.example), then restart Lynkr.")
    assert caught.value.headers == {"x-should-retry": "false"}


@pytest.mark.parametrize(("content", "message"), [
    (b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "Overloaded"),
    (b'{"error":"model not found"}', "model not found"),
    (b'{"message":"Too many tokens"}', "Too many tokens"),
    (b'{"error":{"code":42}}', None),
    (b"[1, 2]", None),
    (b"  upstream connect error  ", "upstream connect error"),
    (b"", None),
    (b"x" * 600, "x" * 500),
])
def test_error_message_shapes(content: bytes, message: str | None) -> None:
    assert _error_message(content) == message


def test_error_for_keeps_the_status_and_maps_the_type() -> None:
    provider = plain()

    named = provider.error_for(429, b'{"error":{"message":"Slow down"}}', {"retry-after": "3"})
    unnamed = provider.error_for(503, b"", {})

    assert type(named) is LynkrError
    assert (named.status, named.error_type, named.message, named.headers, named.provider) == (
        429, "rate_limit_error", "Slow down", {"retry-after": "3"}, "plain")
    assert (unnamed.status, unnamed.error_type, unnamed.message) == (503, "overloaded_error",
                                                                     "plain returned HTTP 503.")


def test_anthropic_error_body_only_for_the_envelope() -> None:
    envelope = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow"}}

    assert anthropic_error_body(orjson.dumps(envelope)) == envelope
    assert anthropic_error_body(b'{"type":"error","error":"Slow"}') is None
    assert anthropic_error_body(b'{"error":{"message":"Slow"}}') is None
    assert anthropic_error_body(b"Slow") is None


@responses.activate
def test_send_posts_the_converted_request_and_shapes_the_reply() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "plain-large",
               "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    responses.post(URL, json=message, headers={"request-id": "up_1"})

    reply = plain().send(request(), call())

    assert reply.message == {**message, "model": "claude-sonnet-4-5"}
    assert (reply.provider, reply.model, reply.headers) == ("plain", "plain-large", {"request-id": "up_1"})
    sent = responses.calls[0].request
    assert sent.headers["x-api-key"] == "sk-ant-plain-0123456789"
    assert isinstance(sent.body, bytes)
    assert orjson.loads(sent.body)["model"] == "plain-large"


@responses.activate
def test_send_refuses_a_body_that_is_not_json() -> None:
    responses.post(URL, body=b"<html>gateway</html>", status=200)

    with pytest.raises(UpstreamError) as caught:
        plain().send(request(), call())

    assert (caught.value.message, caught.value.provider) == ("plain answered with a body that is not JSON.", "plain")


@responses.activate
def test_an_error_status_raises_with_the_upstreams_retry_after() -> None:
    responses.post(URL, status=429, json={"error": {"message": "Slow down"}}, headers={"retry-after": "2.5"})

    with pytest.raises(LynkrError) as caught:
        plain().open_stream(request(), call())

    assert (caught.value.status, caught.value.message, caught.value.retry_after) == (429, "Slow down", "2.5")


@responses.activate
def test_open_stream_items_and_a_bad_event_as_upstream_error() -> None:
    responses.post(URL, body=b'data: {"type":"ping"}\n\ndata: {broken\n\n', content_type="text/event-stream")

    stream = plain().open_stream(request(), call())
    items = iter(stream.items)

    assert (stream.provider, stream.model) == ("plain", "plain-large")
    assert next(items) == {"type": "ping"}
    with pytest.raises(UpstreamError) as caught:
        next(items)
    assert caught.value.message == "plain sent a stream event that is not valid JSON."
    stream.release()
