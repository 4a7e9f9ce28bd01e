"""The official ``anthropic`` SDK through real gunicorn to a strict fake OpenAI upstream.

The gateway runs as ``openai-compatible`` serving ``gpt-4o``: every Anthropic request is
translated to chat completions, and the fake answers 400 to anything api.openai.com would
refuse (tool messages out of place, arguments that are not JSON strings, unknown keys, …).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlock, ToolUseBlock

from app.anthropic.events import validate_stream
from tests.e2e.conftest import OPENAI_MODEL, OPENAI_TOKEN
from tests.e2e.helpers import Gateway, message_body, read_sse
from tests.fakes.openai_upstream import (
    DEFAULT_TEXT,
    ErrorReply,
    FakeOpenAIUpstream,
    JsonReply,
    StreamReply,
    completion,
    text_chunks,
    tool_call,
    tool_call_chunks,
)

REQUESTED = "claude-sonnet-5-5"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER_TOOL = {
    "name": "get_weather", "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME_TOOL = {
    "name": "get_time", "description": "Local time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def openai_upstream(openai_shared: tuple[Gateway, FakeOpenAIUpstream]) -> FakeOpenAIUpstream:
    """The module's strict OpenAI fake, with nothing recorded or scripted yet."""
    fake = openai_shared[1]
    fake.reset()
    return fake


@pytest.fixture
def gateway(openai_shared: tuple[Gateway, FakeOpenAIUpstream], openai_upstream: FakeOpenAIUpstream) -> Gateway:
    """The module's gateway to the fake; it does not retry, so each error reaches the SDK once."""
    return openai_shared[0]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    """An SDK client pointed at the gateway, without retries."""
    with anthropic.Anthropic(base_url=gateway.url, api_key="sk-unused", max_retries=0, timeout=30) as sdk:
        yield sdk


def _accepted(fake: FakeOpenAIUpstream, count: int) -> list[dict[str, Any]]:
    """The bodies of the upstream requests, checked to be ``count`` and none rejected."""
    requests = fake.chat_requests()
    assert fake.rejections() == [], "the gateway sent what OpenAI rejects"
    assert len(requests) == count, [r.body for r in requests]
    return [r.body for r in requests]


def _dump(blocks: list[Any]) -> list[dict[str, Any]]:
    return [block.model_dump(exclude_none=True) for block in blocks]


def test_create_returns_text(client: anthropic.Anthropic, openai_upstream: FakeOpenAIUpstream) -> None:
    """Non-streaming: the completion comes back as an Anthropic message under the requested name."""
    raw = client.messages.with_raw_response.create(model=REQUESTED, max_tokens=256, messages=HELLO,
                                                   system="Be brief.", stop_sequences=["END"])
    message = raw.parse()

    assert raw.headers["x-lynkr-provider"] == "openai-compatible"
    assert raw.headers["x-lynkr-model"] == OPENAI_MODEL
    assert message.model == REQUESTED
    [block] = message.content
    assert isinstance(block, TextBlock)
    assert block.text == DEFAULT_TEXT
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 6)
    [body] = _accepted(openai_upstream, 1)
    assert body["model"] == OPENAI_MODEL
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
    assert body["max_tokens"] == 256
    assert body["stop"] == ["END"]
    assert "stream" not in body
    assert "stream_options" not in body
    [sent] = openai_upstream.chat_requests()
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_TOKEN}"


def test_stream_text_with_usage_from_the_usage_chunk(client: anthropic.Anthropic,
                                                    openai_upstream: FakeOpenAIUpstream) -> None:
    """``messages.stream``: deltas in order, end_turn, and input tokens from OpenAI's final usage chunk."""
    pieces = ["The ", "quick ", "brown ", "fox."]
    openai_upstream.script(StreamReply(text_chunks(pieces, prompt_tokens=40, completion_tokens=9)))

    with client.messages.stream(model=REQUESTED, max_tokens=100_000, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "The quick brown fox."
    assert final.model == REQUESTED
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 9)
    [body] = _accepted(openai_upstream, 1)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 16_384, "max_tokens is clamped to gpt-4o's output limit"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_tool_use_round_trip(client: anthropic.Anthropic, openai_upstream: FakeOpenAIUpstream,
                             stream: bool) -> None:
    """A tool call reaches the SDK as a ToolUseBlock with parsed input; the tool_result turn goes back as an
    assistant ``tool_calls`` message directly followed by its ``tool`` message, which the strict fake checks."""
    arguments = {"city": "Paris"}
    first_reply = (StreamReply(tool_call_chunks([("call_e2e_1", "get_weather", arguments)], preface="Checking."))
                   if stream else JsonReply(completion("Checking.", tool_calls=[
                       tool_call("get_weather", arguments, "call_e2e_1")])))
    openai_upstream.script(first_reply, JsonReply(completion("It is sunny in Paris.")))
    question = [{"role": "user", "content": "Weather in Paris?"}]

    if stream:
        with client.messages.stream(model=REQUESTED, max_tokens=512, messages=question,
                                    tools=[WEATHER_TOOL]) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(model=REQUESTED, max_tokens=512, messages=question, tools=[WEATHER_TOOL])

    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["text", "tool_use"]
    tool_use = first.content[1]
    assert isinstance(tool_use, ToolUseBlock)
    assert (tool_use.id, tool_use.name, tool_use.input) == ("call_e2e_1", "get_weather", arguments)

    follow_up = [*question, {"role": "assistant", "content": _dump(first.content)},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id,
                                               "content": "sunny, 24C"}]}]
    second = client.messages.create(model=REQUESTED, max_tokens=512, messages=follow_up, tools=[WEATHER_TOOL])

    assert second.content[0].text == "It is sunny in Paris."
    assert second.stop_reason == "end_turn"
    bodies = _accepted(openai_upstream, 2)
    assert bodies[0]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": WEATHER_TOOL["description"], "parameters": WEATHER_TOOL["input_schema"]}}]
    assistant, tool = bodies[1]["messages"][1:]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == "Checking."
    [call] = assistant["tool_calls"]
    assert (call["id"], call["type"], call["function"]["name"]) == ("call_e2e_1", "function", "get_weather")
    assert json.loads(call["function"]["arguments"]) == arguments
    assert tool == {"role": "tool", "tool_call_id": "call_e2e_1", "content": "sunny, 24C"}


def test_parallel_tool_calls_round_trip(client: anthropic.Anthropic, openai_upstream: FakeOpenAIUpstream) -> None:
    """Two streamed calls become two tool_use blocks in order; both results go back as tool messages."""
    calls = [("call_par_1", "get_weather", {"city": "Paris"}), ("call_par_2", "get_time", {"city": "Tokyo"})]
    openai_upstream.script(StreamReply(tool_call_chunks(calls)), JsonReply(completion("Sunny; 9pm.")))
    question = [{"role": "user", "content": "Weather in Paris and time in Tokyo?"}]
    tools = [WEATHER_TOOL, TIME_TOOL]

    with client.messages.stream(model=REQUESTED, max_tokens=512, messages=question, tools=tools) as events:
        first = events.get_final_message()

    assert first.stop_reason == "tool_use"
    uses = [(b.id, b.name, b.input) for b in first.content if isinstance(b, ToolUseBlock)]
    assert uses == calls
    results = [{"type": "tool_result", "tool_use_id": call_id, "content": f"result {n}"}
               for n, (call_id, _, _) in enumerate(calls)]
    follow_up = [*question, {"role": "assistant", "content": _dump(first.content)},
                 {"role": "user", "content": results}]
    second = client.messages.create(model=REQUESTED, max_tokens=512, messages=follow_up, tools=tools)

    assert second.content[0].text == "Sunny; 9pm."
    messages = _accepted(openai_upstream, 2)[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_par_1", "call_par_2"]
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [("call_par_1", "result 0"),
                                                                        ("call_par_2", "result 1")]


def _call(client: anthropic.Anthropic, stream: bool) -> Any:
    if stream:
        with client.messages.stream(model=REQUESTED, max_tokens=64, messages=HELLO) as events:
            return events.get_final_message()
    return client.messages.create(model=REQUESTED, max_tokens=64, messages=HELLO)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_429_is_rate_limit_error(client: anthropic.Anthropic, openai_upstream: FakeOpenAIUpstream,
                                          stream: bool) -> None:
    """OpenAI's 429 keeps its status and retry-after and becomes ``rate_limit_error``."""
    openai_upstream.script(ErrorReply(429, "Rate limit reached for gpt-4o.", "requests", "rate_limit_exceeded",
                                      headers={"retry-after": "7"}))

    with pytest.raises(anthropic.RateLimitError) as caught:
        _call(client, stream)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "Rate limit reached for gpt-4o."}
    assert len(openai_upstream.chat_requests()) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_context_length_exceeded_is_prompt_too_long(client: anthropic.Anthropic,
                                                    openai_upstream: FakeOpenAIUpstream, stream: bool) -> None:
    """OpenAI's ``context_length_exceeded`` becomes the 400 wording on which Claude Code compacts."""
    openai_upstream.script(ErrorReply(
        400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 "
             "tokens. Please reduce the length of the messages.",
        "invalid_request_error", "context_length_exceeded", "messages"))

    with pytest.raises(anthropic.BadRequestError) as caught:
        _call(client, stream)

    assert caught.value.status_code == 400
    assert caught.value.body["error"] == {"type": "invalid_request_error",
                                         "message": "prompt is too long: 131072 tokens > 128000 maximum"}


def test_upstream_death_mid_stream_raises_in_the_sdk(client: anthropic.Anthropic,
                                                     openai_upstream: FakeOpenAIUpstream) -> None:
    """The upstream drops the socket after some text: the SDK stream raises instead of ending quietly."""
    openai_upstream.script(StreamReply(text_chunks(["partial ", "answer"], prompt_tokens=None)[:3], die=True))
    seen: list[str] = []

    with pytest.raises(anthropic.APIError) as caught, \
            client.messages.stream(model=REQUESTED, max_tokens=64, messages=HELLO) as events:
        seen.extend(events.text_stream)

    assert "".join(seen) == "partial answer"
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"


def test_upstream_death_mid_stream_ends_with_error_event(gateway: Gateway,
                                                         openai_upstream: FakeOpenAIUpstream) -> None:
    """On the wire: a valid stream that started with 200 and ends in one ``error`` event, no message_stop."""
    openai_upstream.script(StreamReply(text_chunks(["partial ", "answer"], prompt_tokens=None)[:3], die=True))

    with gateway.post(message_body(stream=True), stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response)

    validate_stream(seen.events)
    assert seen.types[0] == "message_start"
    assert seen.types[-1] == "error"
    assert "message_stop" not in seen.types
    assert seen.text() == "partial answer"


def test_foreign_tool_name_and_call_id_round_trip(client: anthropic.Anthropic,
                                                  openai_upstream: FakeOpenAIUpstream) -> None:
    """A tool name OpenAI refuses (``.`` and ``:``) goes up shortened and comes back original; a call id that
    is not a valid Anthropic id (Kimi's ``functions.x:0``) is encoded for the SDK and decoded on the way back,
    so the strict fake sees its own id answered; ``tool_choice`` names the shortened function."""
    tool = {**WEATHER_TOOL, "name": "weather.lookup:v2"}
    upstream_id = "functions.weather:0"

    def model(request: Any) -> Any:
        name = request.body["tools"][0]["function"]["name"]
        if request.messages[-1]["role"] == "tool":
            return JsonReply(completion("Done."))
        return StreamReply(tool_call_chunks([(upstream_id, name, {"city": "Oslo"})]))

    openai_upstream.responder = model
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    choice = {"type": "tool", "name": tool["name"]}
    with client.messages.stream(model=REQUESTED, max_tokens=256, messages=question, tools=[tool],
                                tool_choice=choice) as events:
        first = events.get_final_message()

    [use] = [b for b in first.content if isinstance(b, ToolUseBlock)]
    assert (use.name, use.input) == ("weather.lookup:v2", {"city": "Oslo"})
    assert use.id != upstream_id
    follow_up = [*question, {"role": "assistant", "content": _dump(first.content)},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "cold"}]}]
    second = client.messages.create(model=REQUESTED, max_tokens=256, messages=follow_up, tools=[tool])

    assert second.content[0].text == "Done."
    first_body, second_body = _accepted(openai_upstream, 2)
    name = first_body["tools"][0]["function"]["name"]
    assert name != tool["name"]
    assert first_body["tool_choice"] == {"type": "function", "function": {"name": name}}
    assistant, result = second_body["messages"][1:]
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [(upstream_id, name)]
    assert result["tool_call_id"] == upstream_id


def test_image_goes_up_as_image_url_part(client: anthropic.Anthropic, openai_upstream: FakeOpenAIUpstream) -> None:
    """A base64 image becomes an ``image_url`` data-URL part of the user message."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    content = [image, {"type": "text", "text": "What is this?"}]

    message = client.messages.create(model=REQUESTED, max_tokens=64, messages=[{"role": "user", "content": content}])

    assert message.content[0].text == DEFAULT_TEXT
    [body] = _accepted(openai_upstream, 1)
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"}]}]


def test_upstream_stream_ending_before_any_chunk_is_502(client: anthropic.Anthropic,
                                                        openai_upstream: FakeOpenAIUpstream) -> None:
    """Headers 200, then the body ends without a single chunk: nothing was sent yet, so the client should get
    a real status (and routing a chance to fall back), not a 200 whose only event is an error."""
    openai_upstream.script(StreamReply([], done=False))

    with pytest.raises(anthropic.InternalServerError) as caught:
        _call(client, stream=True)

    assert caught.value.status_code == 502
