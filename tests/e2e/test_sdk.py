"""The official ``anthropic`` SDK as the client, through real gunicorn, against a strict fake upstream.

The fake is strict: had the gateway forwarded the SDK's ``x-stainless-*`` headers, its
``x-api-key``, or anything else Databricks refuses, these calls would fail with a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlock, ToolUseBlock

from app.anthropic.sse import encode
from tests.e2e.conftest import DATABRICKS_TOKEN, free_port
from tests.e2e.helpers import Gateway
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import DEFAULT_TEXT, ErrorReply, FakeAnthropicUpstream, JsonReply, StreamReply

GATEWAY_KEY = "sk-e2e-gateway-key-0001"
REQUESTED = "claude-sonnet-5-5"
UPSTREAM_MODEL = "databricks-claude-sonnet-4-5"
WEATHER_TOOL = {
    "name": "get_weather", "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """A gateway that requires ``GATEWAY_KEY`` and does not retry, so an upstream error reaches the SDK once."""
    return make_gateway(LYNKR_API_KEYS=GATEWAY_KEY, API_RETRY_MAX_RETRIES=0)


@pytest.fixture
def make_client(gateway: Gateway) -> Iterator[Callable[..., anthropic.Anthropic]]:
    """SDK clients pointed at the gateway, without retries; closed afterwards."""
    clients: list[anthropic.Anthropic] = []

    def build(api_key: str = GATEWAY_KEY, gateway_url: str | None = None) -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=gateway_url or gateway.url, api_key=api_key, max_retries=0,
                                     timeout=30)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def test_create_returns_text_with_requested_model(make_client: Callable[..., anthropic.Anthropic],
                                                  mocked_upstream: FakeAnthropicUpstream) -> None:
    """A non-streaming call: the SDK parses the message; model names differ by side."""
    raw = make_client().messages.with_raw_response.create(model=REQUESTED, max_tokens=256, messages=HELLO)
    message = raw.parse()

    assert raw.headers["x-lynkr-model"] == UPSTREAM_MODEL
    assert raw.headers["x-lynkr-provider"] == "databricks"
    assert message.model == REQUESTED
    [block] = message.content
    assert isinstance(block, TextBlock)
    assert block.text == DEFAULT_TEXT
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 6)
    [upstream] = mocked_upstream.requests
    assert upstream.body["model"] == UPSTREAM_MODEL
    assert "stream" not in upstream.body
    assert upstream.headers["authorization"] == f"Bearer {DATABRICKS_TOKEN}"


def test_stream_accumulates_text_and_final_message(make_client: Callable[..., anthropic.Anthropic],
                                                    mocked_upstream: FakeAnthropicUpstream) -> None:
    """``messages.stream``: text deltas in order, final stop reason and usage from message_delta."""
    pieces = ["The ", "quick ", "brown ", "fox."]
    mocked_upstream.script(StreamReply(ev.text_events(pieces, model=UPSTREAM_MODEL, input_tokens=40,
                                                      output_tokens=9)))

    with make_client().messages.stream(model=REQUESTED, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        lynkr_model = stream.response.headers["x-lynkr-model"]

    assert text == "The quick brown fox."
    assert lynkr_model == UPSTREAM_MODEL
    assert final.model == REQUESTED
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 9)
    assert mocked_upstream.requests[0].body["stream"] is True


# Content deltas as an upstream may write them (spaced JSON, a field the SDK does not know): the
# gateway relays them as they came, and the SDK must still read them.
SPACED_DELTAS = [b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                 b'"delta": {"type": "text_delta", "text": "Bonjour "}, "x_trace": 7}\n\n',
                 b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                 b'"delta": {"type": "text_delta", "text": "\\u00e0 tous"}}\n\n']


def test_relayed_delta_bytes_reach_the_sdk_as_the_upstream_wrote_them(
        make_client: Callable[..., anthropic.Anthropic], mocked_upstream: FakeAnthropicUpstream) -> None:
    """Through gunicorn, each delta is the upstream's bytes; the SDK assembles the message from them."""
    chunks = [encode(ev.message_start(model=UPSTREAM_MODEL)), encode(ev.text_start()), *SPACED_DELTAS,
              encode(ev.block_stop()), *(encode(e) for e in ev.message_end())]
    mocked_upstream.script(StreamReply(chunks=chunks), StreamReply(chunks=chunks))
    client = make_client()

    with client.messages.with_streaming_response.create(model=REQUESTED, max_tokens=256, messages=HELLO,
                                                        stream=True) as raw:
        body = b"".join(raw.iter_bytes())
    with client.messages.stream(model=REQUESTED, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    frames = [frame + b"\n\n" for frame in body.split(b"\n\n") if frame and not frame.startswith(b":")]
    assert [f.split(b"\n", 1)[0] for f in frames] == [
        b"event: message_start", b"event: content_block_start", b"event: content_block_delta",
        b"event: content_block_delta", b"event: content_block_stop", b"event: message_delta", b"event: message_stop"]
    assert frames[2:4] == SPACED_DELTAS
    assert b'"model":"claude-sonnet-5-5"' in frames[0]  # message_start is still the gateway's
    assert text == "Bonjour \u00e0 tous"
    assert [(block.type, getattr(block, "text", None)) for block in final.content] == [("text", "Bonjour \u00e0 tous")]
    assert final.stop_reason == "end_turn"


def test_spaced_upstream_deltas_reach_the_sdk_in_the_default_server_mode(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, tmp_path: Path) -> None:
    """With ``WORKSPACE_ROOT`` set the agent loop re-encodes the deltas; the SDK reads the same message."""
    gateway = make_gateway(LYNKR_API_KEYS=GATEWAY_KEY, API_RETRY_MAX_RETRIES=0, WORKSPACE_ROOT=str(tmp_path))
    chunks = [encode(ev.message_start(model=UPSTREAM_MODEL)), encode(ev.text_start()), *SPACED_DELTAS,
              encode(ev.block_stop()), *(encode(e) for e in ev.message_end())]
    mocked_upstream.script(StreamReply(chunks=chunks))

    with anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=30) as client, \
            client.messages.stream(model=REQUESTED, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Bonjour \u00e0 tous"
    assert [(block.type, getattr(block, "text", None)) for block in final.content] == [("text", "Bonjour \u00e0 tous")]
    assert final.stop_reason == "end_turn"
    assert "fs_read" in {t["name"] for t in mocked_upstream.requests[0].body["tools"]}  # Lynkr's tools: server mode


def test_tool_use_round_trip(make_client: Callable[..., anthropic.Anthropic],
                             mocked_upstream: FakeAnthropicUpstream) -> None:
    """A streamed tool_use reaches the SDK with parsed input; the tool_result turn goes upstream intact."""
    mocked_upstream.script(
        StreamReply(ev.tool_use_events("get_weather", {"city": "Paris"}, tool_id="toolu_e2e_1",
                                       preface="Checking.", model=UPSTREAM_MODEL)),
        JsonReply(ev.message([ev.text_block("It is sunny in Paris.")], model=UPSTREAM_MODEL)),
    )
    client = make_client()
    question = [{"role": "user", "content": "Weather in Paris?"}]

    with client.messages.stream(model=REQUESTED, max_tokens=512, messages=question, tools=[WEATHER_TOOL]) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["text", "tool_use"]
    tool_use = first.content[1]
    assert isinstance(tool_use, ToolUseBlock)
    assert (tool_use.id, tool_use.name, tool_use.input) == ("toolu_e2e_1", "get_weather", {"city": "Paris"})

    follow_up = [*question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_e2e_1",
                                               "content": "sunny, 24C"}]}]
    second = client.messages.create(model=REQUESTED, max_tokens=512, messages=follow_up, tools=[WEATHER_TOOL])

    assert second.content[0].text == "It is sunny in Paris."
    upstream = mocked_upstream.requests[1].body
    assert upstream["tools"][0]["name"] == "get_weather"
    assert upstream["messages"][1]["content"][1] == {"type": "tool_use", "id": "toolu_e2e_1",
                                                    "name": "get_weather", "input": {"city": "Paris"}}
    assert upstream["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_e2e_1",
                                                    "content": "sunny, 24C"}


def _call(client: anthropic.Anthropic, stream: bool) -> Any:
    if stream:
        with client.messages.stream(model=REQUESTED, max_tokens=64, messages=HELLO) as events:
            return events.get_final_message()
    return client.messages.create(model=REQUESTED, max_tokens=64, messages=HELLO)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_429_is_rate_limit_error_with_retry_after(make_client: Callable[..., anthropic.Anthropic],
                                                           mocked_upstream: FakeAnthropicUpstream,
                                                           stream: bool) -> None:
    """An upstream 429 keeps its status, error type and retry-after, streaming or not."""
    mocked_upstream.script(ErrorReply(429, "rate_limit_error", "Slow down.", headers={"retry-after": "7"}))

    with pytest.raises(anthropic.RateLimitError) as caught:
        _call(make_client(), stream)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "Slow down."}
    assert len(mocked_upstream.requests) == 1, "API_RETRY_MAX_RETRIES=0 should leave retries to the SDK"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_529_is_overloaded_error(make_client: Callable[..., anthropic.Anthropic],
                                          mocked_upstream: FakeAnthropicUpstream, stream: bool) -> None:
    """An upstream 529 reaches the SDK as 529 ``OverloadedError`` (an ``InternalServerError``)."""
    mocked_upstream.script(ErrorReply(529, "overloaded_error", "Overloaded"))

    with pytest.raises(anthropic.OverloadedError) as caught:
        _call(make_client(), stream)

    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_wrong_gateway_key_is_authentication_error(make_client: Callable[..., anthropic.Anthropic],
                                                   mocked_upstream: FakeAnthropicUpstream) -> None:
    """A key not in LYNKR_API_KEYS gets 401 and nothing goes upstream."""
    with pytest.raises(anthropic.AuthenticationError) as caught:
        make_client(api_key="sk-e2e-wrong-key-9999").messages.create(model=REQUESTED, max_tokens=64, messages=HELLO)

    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert caught.value.response.headers["x-request-id"] == caught.value.body["request_id"]
    assert mocked_upstream.requests == []


def test_invalid_request_is_bad_request_error(make_client: Callable[..., anthropic.Anthropic],
                                              mocked_upstream: FakeAnthropicUpstream) -> None:
    """``max_tokens: 0`` is refused by the gateway itself with 400 naming the field."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        make_client().messages.create(model=REQUESTED, max_tokens=0, messages=HELLO)

    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith("max_tokens:")
    assert mocked_upstream.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_connection_refused_is_502_naming_provider(make_gateway: Callable[..., Gateway],
                                                            stream: bool) -> None:
    """Nothing listening upstream: 502 api_error whose message names databricks and the address."""
    dead = f"127.0.0.1:{free_port()}"
    gateway = make_gateway(DATABRICKS_API_BASE=f"http://{dead}", LYNKR_API_KEYS=GATEWAY_KEY, API_RETRY_MAX_RETRIES=0)

    with anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=30) as client, \
            pytest.raises(anthropic.InternalServerError) as caught:
        _call(client, stream)

    assert caught.value.status_code == 502
    error = caught.value.body["error"]
    assert error["type"] == "api_error"
    assert "databricks" in error["message"]
    assert dead in error["message"]
    assert "connection refused" in error["message"]

