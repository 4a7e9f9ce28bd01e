"""Chat-completions chunks as Anthropic events: interleaved calls, usage after finish, every way a stream ends."""

from __future__ import annotations

from typing import Any

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.stream import EARLY_EOF, EMPTY_STREAM, StreamTranslator, text_call_names

START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}


def run(chunks: list[Any], *, done: bool = False, request: dict[str, Any] | None = None,
        caps: ModelCapabilities | None = None) -> list[dict[str, Any]]:
    translator = StreamTranslator(StreamBuilder(message_id="msg_1", model="m"), request=request or {},
                                  caps=caps or ModelCapabilities())
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    if done:
        events += translator.done()
    return events + translator.close()


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields}]}


def call(index: int, arguments: str, **fields: Any) -> dict[str, Any]:
    return delta(tool_calls=[{"index": index, "function": {"arguments": arguments, **fields.pop("function", {})},
                              **fields}])


def test_interleaved_calls_come_out_one_block_each_and_usage_after_finish_ends_it() -> None:
    events = run([
        call(0, '{"p":', id="call_a", function={"name": "Read"}),
        call(1, "{}", id="call_b", function={"name": "Grep"}),
        call(0, '"a"}'),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ])
    validate_stream(events)
    assert events == [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "call_a",
                                                                       "name": "Read", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"p":'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"a"}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_b",
                                                                       "name": "Grep", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 0}},
        {"type": "message_stop"},
    ]


def test_a_finish_reason_without_usage_finishes_at_eof() -> None:
    events = run([{"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}])
    validate_stream(events)
    assert events[-2] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"input_tokens": 0, "output_tokens": 0}}


def test_reasoning_then_text_with_a_signature_between() -> None:
    events = run([delta(reasoning_content="plan"), delta(content="Hi")], done=True)
    validate_stream(events)
    assert [e["delta"] for e in events if e["type"] == "content_block_delta"] == [
        {"type": "thinking_delta", "thinking": "plan"},
        {"type": "signature_delta", "signature": "lynkr-synthetic:64879f7d6b960a01"},
        {"type": "text_delta", "text": "Hi"}]


def test_eof_before_any_end_is_an_error_never_end_turn() -> None:
    events = run([delta(content="Hi")])
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events[-1]["error"] == {"type": "api_error", "message": EARLY_EOF}


def test_done_without_an_answer_is_an_error() -> None:
    assert run([{"choices": []}], done=True) == [
        START, {"type": "error", "error": {"type": "api_error", "message": EMPTY_STREAM}}]
    assert run([], done=True) == [{"type": "error", "error": {"type": "api_error", "message": EMPTY_STREAM}}]


def test_an_error_chunk_is_typed_by_its_code() -> None:
    events = run([delta(content="Hi"), {"error": {"code": 429, "message": "Rate limited"}}, delta(content="more")])
    assert events[-1] == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}
    assert [e["type"] for e in events].count("error") == 1


def test_a_call_cut_by_the_length_limit_is_named() -> None:
    events = run([{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c", "function": {"name": "Read", "arguments": '{"p": "a'}}]}, "finish_reason": "length"}]}],
        done=True)
    assert events[-1]["error"] == {"type": "api_error",
                                   "message": "the model ran out of output tokens in the middle of a call to Read"}


def test_refusals_and_openrouters_error_finish() -> None:
    refused = run([{"choices": [{"index": 0, "delta": {"refusal": "No."}, "finish_reason": "content_filter"}]}],
                  done=True)
    validate_stream(refused)
    assert refused[2]["delta"] == {"type": "text_delta", "text": "No."}
    assert refused[-2]["delta"]["stop_reason"] == "refusal"
    failed = run([{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "error"}]}], done=True)
    assert failed[-1]["error"] == {"type": "api_error", "message": "upstream reported an error while generating"}


def test_arguments_without_a_name_are_an_error() -> None:
    events = run([call(0, '{"p": 1}'), {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}],
                 done=True)
    assert events[-1]["error"] == {"type": "api_error",
                                   "message": "upstream sent tool call arguments without a function name"}


def test_text_call_names_map_both_names_to_the_original() -> None:
    assert text_call_names({"tools": [{"name": "Read", "input_schema": {}}]}) == {"Read": "Read"}
    long_name = "mcp__" + "x" * 80
    names = text_call_names({"tools": [{"name": long_name, "input_schema": {}}]})
    assert set(names.values()) == {long_name}
    assert len(names) == 2
