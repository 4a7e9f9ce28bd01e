"""Agent ops applied to a StreamBuilder give exact events; a StepBuilder hands deltas back as ops."""

from __future__ import annotations

from typing import Any

import pytest

from app.agent.ops import ClientToolCall, Finish, ServerBlock, Signature, StepBuilder, Text, Thinking, apply
from app.anthropic.events import StreamBuilder
from app.errors import UpstreamError
from app.providers.formats.anthropic import StreamTranslator
from tests.fakes.anthropic_events import block_stop, message_end, message_start, text_delta, text_start

START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}


def builder() -> StreamBuilder:
    return StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5")


def test_text_opens_a_text_block_after_message_start() -> None:
    assert apply(builder(), Text("Hello")) == [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    ]


def test_thinking_then_its_signature() -> None:
    b = builder()

    assert apply(b, Thinking("Let me see.")) == [
        START,
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me see."}},
    ]
    assert apply(b, Signature("sig-abc")) == [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-abc"}},
    ]


def test_a_client_tool_call_streams_its_input_as_one_json_delta() -> None:
    b = builder()
    apply(b, Text("Reading."))
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/tmp/a.py"}}

    assert apply(b, ClientToolCall(call)) == [
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '{"file_path":"/tmp/a.py"}'}},
    ]


def test_a_client_tool_call_without_input_sends_an_empty_object() -> None:
    events = apply(builder(), ClientToolCall({"type": "tool_use", "id": "toolu_2", "name": "Clear"}))

    assert events[-1] == {"type": "content_block_delta", "index": 0,
                          "delta": {"type": "input_json_delta", "partial_json": "{}"}}


def test_a_server_block_is_emitted_whole() -> None:
    block = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "lynkr"}}

    assert apply(builder(), ServerBlock(block)) == [
        START,
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"query":"lynkr"}'}},
        {"type": "content_block_stop", "index": 0},
    ]


def test_finish_closes_the_block_and_ends_the_message() -> None:
    b = builder()
    apply(b, Text("Done."))

    assert apply(b, Finish("end_turn", {"input_tokens": 20, "output_tokens": 3})) == [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"input_tokens": 20, "output_tokens": 3}},
        {"type": "message_stop"},
    ]
    assert b.finished is True
    assert b.accumulator.message["content"] == [{"type": "text", "text": "Done."}]


def test_apply_refuses_what_is_not_an_op() -> None:
    with pytest.raises(TypeError, match="not an agent op"):
        apply(builder(), "Hello")  # type: ignore[arg-type]


def thinking_events() -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}},
        block_stop(0),
    ]


def test_take_yields_the_ops_of_the_translated_deltas_since_the_last_take() -> None:
    step = StepBuilder(model="databricks-claude-sonnet-4-5")
    translator = StreamTranslator(step)

    for event in [message_start(), *thinking_events()]:
        translator.feed(event)
    assert step.take() == [Thinking("Hmm."), Signature("sig-1")]
    assert step.take() == []

    for event in [text_start(1), text_delta("Hel", 1), text_delta("lo", 1), block_stop(1), *message_end()]:
        translator.feed(event)
    assert step.take() == [Text("Hel"), Text("lo")]
    assert step.failure is None
    assert step.accumulator.message["content"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig-1"}, {"type": "text", "text": "Hello"}]


def test_tool_input_deltas_are_kept_in_the_message_but_are_no_ops() -> None:
    step = StepBuilder(model="databricks-claude-sonnet-4-5")
    translator = StreamTranslator(step)
    events = [
        message_start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_9", "name": "workspace_read", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"path":'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"a.py"}'}},
        block_stop(0), *message_end("tool_use"),
    ]

    for event in events:
        translator.feed(event)

    assert step.take() == []
    assert step.accumulator.message["content"] == [
        {"type": "tool_use", "id": "toolu_9", "name": "workspace_read", "input": {"path": "a.py"}}]


def test_an_error_event_becomes_the_failure() -> None:
    step = StepBuilder(model="databricks-claude-sonnet-4-5")
    translator = StreamTranslator(step)
    translator.feed(message_start())
    translator.feed(text_start())
    translator.feed(text_delta("Par"))

    translator.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    assert step.take() == [Text("Par")]
    assert isinstance(step.failure, UpstreamError)
    assert (step.failure.status, step.failure.error_type, step.failure.message) == (529, "overloaded_error",
                                                                                    "Overloaded")
