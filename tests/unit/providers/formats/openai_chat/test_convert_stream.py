"""Stream and JSON translation details that the golden cases do not pin down."""

from __future__ import annotations

from typing import Any

import pytest

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.convert import StreamTranslator, UpstreamFormatError, from_upstream

BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [BASH],
}


def make_chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def make_call(index: Any = 0, call_id: str | None = None, name: str | None = None, args: str | None = None) -> dict:
    call: dict[str, Any] = {"function": {}}
    if index is not None:
        call["index"] = index
    if call_id:
        call["id"] = call_id
    if name:
        call["function"]["name"] = name
    if args is not None:
        call["function"]["arguments"] = args
    return {"tool_calls": [call]}


def make_translator(caps: ModelCapabilities | None = None) -> StreamTranslator:
    builder = StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5", input_tokens=7)
    return StreamTranslator(builder, request=REQUEST, caps=caps or ModelCapabilities())


def replay(items: list[Any], caps: ModelCapabilities | None = None) -> list[dict[str, Any]]:
    translator = make_translator(caps)
    events: list[dict[str, Any]] = []
    for item in items:
        events += translator.done() if item == "[DONE]" else translator.feed(item)
    events += translator.close()
    validate_stream(events)
    return events


def content_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for event in events:
        if event["type"] == "content_block_start":
            blocks.append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            key = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}.get(
                delta["type"]
            )
            if key:
                blocks[-1][key] = blocks[-1].get(key, "") + delta[key]
    return blocks


def test_usage_in_the_finish_chunk_finishes_at_once() -> None:
    translator = make_translator()
    events = translator.feed(make_chunk({"content": "ok"}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 1}))
    assert events[-1] == {"type": "message_stop"}
    assert events[-2]["usage"] == {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 0}
    assert translator.feed(make_chunk({"content": "late"})) == []
    assert translator.done() == []
    assert translator.close() == []


def test_done_without_usage_keeps_the_estimate() -> None:
    events = replay([make_chunk({"content": "ok"}), make_chunk(finish="stop"), "[DONE]"])
    assert events[-2]["usage"] == {"input_tokens": 7, "output_tokens": 0}


def test_done_without_finish_reason_still_finishes() -> None:
    events = replay([make_chunk({"content": "ok"}), "[DONE]"])
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_finish_reason_stop_with_calls_is_tool_use() -> None:
    events = replay([make_chunk(make_call(0, "c1", "Bash", '{"command": "ls"}')), make_chunk(finish="stop"), "[DONE]"])
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_arguments_before_the_name_are_kept() -> None:
    events = replay(
        [
            make_chunk(make_call(0, "c1", args='{"command": ')),
            make_chunk(make_call(0, name="Bash", args='"ls"}')),
            make_chunk(finish="tool_calls"),
            "[DONE]",
        ]
    )
    assert content_of(events) == [
        {"type": "tool_use", "id": "c1", "name": "Bash", "input": {}, "partial_json": '{"command": "ls"}'}
    ]


def test_calls_without_index_are_told_apart_by_id() -> None:
    events = replay(
        [
            make_chunk(make_call(None, "c1", "Bash", '{"command": "a"}')),
            make_chunk(make_call(None, "c2", "Bash", '{"command": "b"}')),
            make_chunk(finish="tool_calls"),
            "[DONE]",
        ]
    )
    assert [block["id"] for block in content_of(events)] == ["c1", "c2"]


def test_a_new_id_at_a_used_index_is_a_new_call() -> None:
    # Gemini's OpenAI-compatible endpoint sends parallel calls whole, each at index 0.
    events = replay(
        [
            make_chunk(make_call(0, "c1", "Bash", '{"command": "a"}')),
            make_chunk(make_call(0, "c2", "Bash", '{"command": "b"}')),
            make_chunk(finish="tool_calls"),
            "[DONE]",
        ]
    )
    assert [block["partial_json"] for block in content_of(events)] == ['{"command": "a"}', '{"command": "b"}']


def test_legacy_function_call_delta() -> None:
    events = replay(
        [
            make_chunk({"function_call": {"name": "Bash", "arguments": '{"command": "ls"}'}}),
            make_chunk(finish="function_call"),
            "[DONE]",
        ]
    )
    assert content_of(events)[0]["name"] == "Bash"
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_reasoning_after_a_call_started_is_dropped() -> None:
    events = replay(
        [
            make_chunk({"reasoning_content": "first"}),
            make_chunk(make_call(0, "c1", "Bash", "{}")),
            make_chunk({"reasoning_content": "late"}),
            make_chunk(finish="tool_calls"),
            "[DONE]",
        ]
    )
    assert [block["type"] for block in content_of(events)] == ["thinking", "tool_use"]
    assert content_of(events)[0]["thinking"] == "first"


def test_a_call_that_never_gets_a_name_is_an_error() -> None:
    events = replay([make_chunk(make_call(0, "c1", args='{"a": 1}')), make_chunk(finish="tool_calls"), "[DONE]"])
    assert events[-1]["type"] == "error"


def test_openrouter_finish_reason_error_is_an_error() -> None:
    events = replay([make_chunk({"content": "par"}), make_chunk(finish="error"), "[DONE]"])
    assert events[-1]["type"] == "error"


def test_error_before_anything_else_is_a_valid_stream() -> None:
    events = replay([{"error": {"message": "Invalid API key", "code": 401}}])
    assert events == [{"type": "error", "error": {"type": "authentication_error", "message": "Invalid API key"}}]


def test_printed_calls_stay_text_unless_the_model_prints_calls() -> None:
    markup = '<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>'
    plain = replay([make_chunk({"content": markup}), make_chunk(finish="stop"), "[DONE]"])
    parsed = replay(
        [make_chunk({"content": markup}), make_chunk(finish="stop"), "[DONE]"], ModelCapabilities(text_tool_calls=True)
    )
    assert content_of(plain) == [{"type": "text", "text": markup}]
    assert content_of(parsed)[0]["name"] == "Bash"


@pytest.mark.parametrize("junk", [{"choices": None}, {"choices": ["x", 3]}, {"choices": [{"delta": None}]}, {}])
def test_junk_chunks_are_ignored(junk: dict[str, Any]) -> None:
    events = replay([junk, make_chunk({"content": "ok"}), make_chunk(finish="stop"), "[DONE]"])
    assert content_of(events) == [{"type": "text", "text": "ok"}]


# -- JSON -----------------------------------------------------------------------------------


def make_message(message: dict[str, Any], finish: str = "stop", caps: ModelCapabilities | None = None) -> dict:
    body = {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    return from_upstream(body, message_id="msg_1", model="claude-x", request=REQUEST, caps=caps or ModelCapabilities())


def test_reasoning_and_think_tags_both_become_thinking() -> None:
    message = make_message({"reasoning": "a ", "content": [{"type": "text", "text": "<think>b</think>answer"}]})
    assert [(b["type"], b.get("thinking") or b.get("text")) for b in message["content"]] == [
        ("thinking", "a b"),
        ("text", "answer"),
    ]
    assert message["content"][0]["signature"].startswith("lynkr-synthetic:")


@pytest.mark.parametrize(
    ("call", "finish"),
    [
        ({"id": "c", "function": {"name": "Bash", "arguments": "not json at all"}}, "tool_calls"),
        ({"id": "c", "function": {"name": "Bash", "arguments": '{"command": "trunc'}}, "length"),
        ({"id": "c", "function": {"arguments": "{}"}}, "tool_calls"),
    ],
)
def test_unusable_calls_raise(call: dict[str, Any], finish: str) -> None:
    with pytest.raises(UpstreamFormatError) as caught:
        make_message({"content": None, "tool_calls": [call]}, finish)
    assert caught.value.error_type == "api_error"


@pytest.mark.parametrize("body", [{"choices": []}, {"object": "chat.completion"}, {"choices": "nope"}])
def test_bodies_without_choices_raise(body: dict[str, Any]) -> None:
    with pytest.raises(UpstreamFormatError):
        from_upstream(body, message_id="m", model="x", request=REQUEST, caps=ModelCapabilities())


def test_embedded_rate_limit_keeps_its_type() -> None:
    body = {"error": {"code": 429, "message": "slow down"}}
    with pytest.raises(UpstreamFormatError) as caught:
        from_upstream(body, message_id="m", model="x", request=REQUEST, caps=ModelCapabilities())
    assert (caught.value.status, caught.value.error_type) == (429, "rate_limit_error")


def test_deepseek_cache_hits_count_as_cache_reads() -> None:
    body = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 2, "prompt_cache_hit_tokens": 64},
    }
    message = from_upstream(body, message_id="m", model="x", request=REQUEST, caps=ModelCapabilities())
    assert message["usage"] == {"input_tokens": 36, "output_tokens": 2, "cache_read_input_tokens": 64}


@pytest.mark.parametrize(
    "message",
    [
        {"content": "<think>plan</think>\n\nanswer"},
        {"reasoning_content": "why", "content": "answer"},
        {"content": 'Running.\n<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>'},
        {"content": '{"name": "Bash", "arguments": {"command": "ls"}}'},
        {
            "content": "Two calls.",
            "tool_calls": [
                {"index": 0, "id": "functions.Bash:0", "function": {"name": "Bash", "arguments": '{"command": "a"}'}},
                {"index": 1, "id": "functions.Bash:1", "function": {"name": "Bash", "arguments": "{'command': 'b'}"}},
            ],
        },
    ],
)
def test_json_and_stream_agree(message: dict[str, Any]) -> None:
    caps = ModelCapabilities(text_tool_calls=True)
    from_json = make_message(message, "tool_calls" if "tool_calls" in message else "stop", caps)
    delta = {key: value for key, value in message.items() if key != "tool_calls"}
    chunks = [make_chunk(delta), *[make_chunk({"tool_calls": [call]}) for call in message.get("tool_calls", [])]]
    builder = StreamBuilder(message_id="msg_1", model="claude-x")
    translator = StreamTranslator(builder, request=REQUEST, caps=caps)
    for item in [*chunks, make_chunk(finish="stop")]:
        translator.feed(item)
    translator.done()
    streamed = builder.accumulator.message
    assert streamed["content"] == from_json["content"]
    assert streamed["stop_reason"] == from_json["stop_reason"]


def test_a_stream_of_only_empty_chunks_then_done_is_an_error() -> None:
    events = replay([{"choices": []}, {"choices": [], "usage": None}, "[DONE]"])
    assert events[-1] == {"type": "error", "error": {
        "type": "api_error",
        "message": "The upstream ended the stream without answering (no content and no finish_reason)."}}
    assert not any(event["type"] in ("content_block_start", "message_stop") for event in events)


def test_a_role_only_chunk_then_done_is_an_error() -> None:
    events = replay([make_chunk({"role": "assistant", "content": ""}), "[DONE]"])
    assert events[-1]["type"] == "error"


def test_a_finish_reason_without_content_is_an_empty_answer_not_an_error() -> None:
    events = replay([make_chunk({"role": "assistant"}), make_chunk({}, finish="stop"), "[DONE]"])
    assert [event["type"] for event in events] == ["message_start", "message_delta", "message_stop"]
    assert events[1]["delta"]["stop_reason"] == "end_turn"


def test_content_without_a_finish_reason_still_finishes_at_done() -> None:
    events = replay([make_chunk({"content": "Hi"}), "[DONE]"])
    assert events[-1] == {"type": "message_stop"}
