"""Ollama NDJSON lines as Anthropic events: whole tool calls streamed as blocks, errors and early EOF."""

from __future__ import annotations

from typing import Any

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.stream import EARLY_EOF, EMPTY_STREAM, StreamTranslator

START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}


def run(lines: list[Any], *, request: dict[str, Any] | None = None,
        caps: ModelCapabilities | None = None) -> list[dict[str, Any]]:
    translator = StreamTranslator(StreamBuilder(message_id="msg_1", model="m"), request=request or {},
                                  caps=caps or ModelCapabilities())
    events = [event for line in lines for event in translator.feed(line)]
    return events + translator.close()


def test_thinking_text_and_two_calls_in_one_line() -> None:
    events = run([
        {"message": {"role": "assistant", "thinking": "hm"}, "done": False},
        {"message": {"content": "Hi"}, "done": False},
        {"message": {"content": "", "tool_calls": [{"function": {"name": "Read", "arguments": {"p": "a"}}},
                                                   {"function": {"name": "Grep", "arguments": {}}}]}},
        {"message": {"content": ""}, "done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 7},
    ])
    validate_stream(events)
    assert events[0] == START
    assert events[1:5] == [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                       "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta",
                                                              "signature": "lynkr-synthetic:b82e2178ecf4d0c5"}},
        {"type": "content_block_stop", "index": 0}]
    assert events[8:14] == [
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_a9a52fa53ccdbfbbe333256a", "name": "Read", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                              "partial_json": '{"p":"a"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {
            "type": "tool_use", "id": "toolu_9a7a144d95ec96c2b2c5d36f", "name": "Grep", "input": {}}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 3}]
    assert events[-2:] == [
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 5, "output_tokens": 7}},
        {"type": "message_stop"}]


def test_think_tags_in_content_and_a_length_stop() -> None:
    events = run([{"message": {"content": "<think>plan</think>Hi"}}, {"done": True, "done_reason": "length"}])
    validate_stream(events)
    assert [e["delta"] for e in events if e["type"] == "content_block_delta"] == [
        {"type": "thinking_delta", "thinking": "plan"},
        {"type": "signature_delta", "signature": "lynkr-synthetic:64879f7d6b960a01"},
        {"type": "text_delta", "text": "Hi"}]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_eof_before_done_is_an_error_never_end_turn() -> None:
    events = run([{"message": {"content": "Hi"}, "done": False}])
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events[-1]["error"] == {"type": "api_error", "message": EARLY_EOF}


def test_done_without_any_answer_is_an_error() -> None:
    assert run([{"done": True}])[1:] == [{"type": "error", "error": {"type": "api_error", "message": EMPTY_STREAM}}]


def test_an_error_line_ends_the_stream_typed() -> None:
    events = run([{"message": {"content": "Hi"}}, {"error": "model 'x' not found"}, {"message": {"content": "more"}}])
    assert events[-1] == {"type": "error", "error": {"type": "not_found_error", "message": "model 'x' not found"}}
    assert [e["type"] for e in events].count("error") == 1


def test_unusable_calls_are_errors() -> None:
    assert run([{"message": {"tool_calls": [{"function": {"arguments": {}}}]}}])[-1]["error"] == {
        "type": "api_error", "message": "Ollama sent a tool call without a function name"}
    assert run([{"message": {"tool_calls": [{"function": {"name": "Read", "arguments": "nonsense"}}]}}])[-1][
        "error"] == {"type": "api_error", "message": "Ollama sent arguments for Read that are not a JSON object"}


def test_a_printed_call_becomes_a_tool_block_at_the_end() -> None:
    request = {"tools": [{"name": "Read", "input_schema": {"type": "object"}}]}
    events = run([{"message": {"content": '<tool_call>{"name": "Read", "arguments": {"p": "a"}}</tool_call>'}},
                  {"done": True, "done_reason": "stop"}], request=request,
                 caps=ModelCapabilities(text_tool_calls=True))
    validate_stream(events)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(b["type"], b.get("name")) for b in starts] == [("tool_use", "Read")]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
