"""StreamBuilder emits valid sequences; the grammar catches invalid ones."""

from __future__ import annotations

import pytest

from app.anthropic.events import StreamBuilder, StreamGrammarError, validate_stream


def make_builder() -> StreamBuilder:
    return StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5", input_tokens=10)


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_text_then_finish_is_a_complete_message() -> None:
    b = make_builder()
    events = b.text("Hel") + b.text("") + b.text("lo") + b.finish("end_turn", {"output_tokens": 2})
    validate_stream(events)
    assert kinds(events) == ["message_start", "content_block_start", "content_block_delta",
                             "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert events[-2]["usage"] == {"input_tokens": 10, "output_tokens": 2}
    assert b.accumulator.message["content"] == [{"type": "text", "text": "Hello"}]


def test_empty_text_never_opens_a_block() -> None:
    b = make_builder()
    events = b.text("") + b.finish("end_turn")
    assert kinds(events) == ["message_start", "message_delta", "message_stop"]


def test_thinking_then_text_then_tool_get_increasing_indices() -> None:
    b = make_builder()
    events = (b.thinking("hmm") + b.thinking_signature("sig") + b.text("ok") + b.tool_start(0, "toolu_1", "Read")
              + b.tool_args(0, '{"a"') + b.tool_args(0, ":1}") + b.finish("tool_use"))
    validate_stream(events)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    message = b.accumulator.message
    assert message["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    assert message["content"][2] == {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"a": 1}}
    assert b.has_tool_use


def test_interleaved_tool_fragments_land_in_their_own_blocks() -> None:
    b = make_builder()
    events = (b.tool_start(0, "t0", "A") + b.tool_args(0, '{"x":') + b.tool_start(1, "t1", "B")
              + b.tool_args(1, '{"y":') + b.tool_args(0, "1}") + b.tool_args(1, "2}") + b.finish("tool_use"))
    validate_stream(events)
    content = b.accumulator.message["content"]
    assert content == [{"type": "tool_use", "id": "t0", "name": "A", "input": {"x": 1}},
                       {"type": "tool_use", "id": "t1", "name": "B", "input": {"y": 2}}]


def test_text_inside_a_call_does_not_split_it() -> None:
    b = make_builder()
    events = (b.tool_start(0, "t0", "A") + b.tool_args(0, '{"x"') + b.text("note") + b.tool_args(0, ":1}")
              + b.finish("tool_use"))
    validate_stream(events)
    content = b.accumulator.message["content"]
    assert content == [{"type": "tool_use", "id": "t0", "name": "A", "input": {"x": 1}},
                       {"type": "text", "text": "note"}]


def test_error_ends_the_stream_and_nothing_follows() -> None:
    b = make_builder()
    events = b.text("partial") + b.error("api_error", "upstream died")
    validate_stream(events)
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "upstream died"}}
    assert b.finished
    assert b.error("api_error", "again") == []


def test_relay_echoes_the_requested_model_and_passes_unknown_events() -> None:
    b = make_builder()
    upstream = [
        {"type": "message_start", "message": {"id": "msg_up", "model": "databricks-claude", "content": [],
                                              "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "future_event", "payload": {"x": 1}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}},
        {"type": "message_stop"},
    ]
    out = [e for event in upstream for e in b.relay(event)]
    assert out[0]["message"]["model"] == "claude-sonnet-4-5"
    assert out[4] == {"type": "future_event", "payload": {"x": 1}}
    validate_stream(out)


@pytest.mark.parametrize("events", [
    [{"type": "ping"}],
    [{"type": "message_start", "message": {}}, {"type": "content_block_delta", "index": 0, "delta": {}}],
    [{"type": "message_start", "message": {}}, {"type": "content_block_start", "index": 0, "content_block": {}},
     {"type": "content_block_start", "index": 1, "content_block": {}}],
    [{"type": "message_start", "message": {}}, {"type": "content_block_start", "index": 1, "content_block": {}},
     {"type": "content_block_stop", "index": 1}, {"type": "content_block_start", "index": 1, "content_block": {}}],
    [{"type": "message_start", "message": {}}, {"type": "message_stop"}],
    [{"type": "message_start", "message": {}}, {"type": "message_delta", "delta": {}}],
    [{"type": "message_start", "message": {}}, {"type": "message_delta", "delta": {}}, {"type": "message_stop"},
     {"type": "ping"}],
])
def test_grammar_rejects_invalid_sequences(events: list[dict]) -> None:
    with pytest.raises(StreamGrammarError):
        validate_stream(events)


def _delta(index: int, kind: str, text: str) -> dict[str, object]:
    key = {"text_delta": "text", "thinking_delta": "thinking"}.get(kind, "signature")
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, key: text}}


def test_a_delta_is_passed_on_only_where_the_builder_would_put_it() -> None:
    builder = StreamBuilder(message_id="msg_1", model="m")
    assert builder.passes_on_delta(_delta(0, "text_delta", "a")) is False, "no block is open yet"
    builder.text("Hi")
    assert builder.passes_on_delta(_delta(1, "text_delta", "a")) is False, "another index"
    assert builder.passes_on_delta(_delta(0, "thinking_delta", "a")) is False, "another kind of block"
    assert builder.passes_on_delta(_delta(0, "text_delta", "")) is False, "an empty delta is not sent"
    assert builder.passes_on_delta(_delta(0, "signature_delta", "sig")) is False
    assert builder.passes_on_delta({"type": "content_block_delta", "index": 0, "delta": "x"}) is False
    assert builder.passes_on_delta(_delta(0, "text_delta", " there")) is True
    builder.thinking("hmm")
    assert builder.passes_on_delta(_delta(1, "thinking_delta", ", yes")) is True
    message = builder.accumulator.message
    assert message["content"] == [{"type": "text", "text": "Hi there"},
                                  {"type": "thinking", "thinking": "hmm, yes", "signature": ""}]


def test_no_delta_is_passed_on_while_a_tool_call_holds_the_text_back() -> None:
    builder = StreamBuilder(message_id="msg_1", model="m")
    builder.text("Hi")
    builder.tool_start(0, "toolu_1", "Read")
    builder.text("later")  # held until the tool call's block ends
    assert builder.passes_on_delta(_delta(0, "text_delta", "x")) is False
    assert builder.passes_on_delta(_delta(1, "text_delta", "x")) is False
