"""Stream and JSON translation details of the Ollama format that the golden cases do not pin down."""

from __future__ import annotations

from typing import Any

import pytest

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.convert import StreamTranslator, UpstreamFormatError, from_upstream

BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
           "tools": [BASH]}


def make_line(content: str = "", *, done: bool = False, **message: Any) -> dict[str, Any]:
    return {"model": "m", "message": {"role": "assistant", "content": content, **message}, "done": done}


def make_done(reason: str = "stop", **counts: Any) -> dict[str, Any]:
    return {**make_line(done=True), "done_reason": reason, **counts}


def make_call(name: str | None = "Bash", arguments: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": {"command": "ls"} if arguments is None else arguments}
    if name is not None:
        function["name"] = name
    return {"function": function}


def make_translator(caps: ModelCapabilities | None = None) -> StreamTranslator:
    builder = StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5", input_tokens=7)
    return StreamTranslator(builder, request=REQUEST, caps=caps or ModelCapabilities())


def replay(items: list[Any], caps: ModelCapabilities | None = None) -> list[dict[str, Any]]:
    translator = make_translator(caps)
    events: list[dict[str, Any]] = []
    for item in items:
        events += translator.feed(item)
    events += translator.close()
    validate_stream(events)
    return events


def starts(events: list[dict[str, Any]]) -> list[str]:
    return [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]


def test_done_line_finishes_at_once_and_later_lines_are_ignored() -> None:
    translator = make_translator()
    events = translator.feed(make_line("ok")) + translator.feed(make_done(prompt_eval_count=5, eval_count=1))
    assert events[-1] == {"type": "message_stop"}
    assert events[-2]["usage"] == {"input_tokens": 5, "output_tokens": 1}
    assert translator.feed(make_line("late")) == []
    assert translator.feed({"error": "late"}) == []
    assert translator.close() == []


def test_done_without_counts_keeps_the_estimate() -> None:
    events = replay([make_line("ok"), make_done()])
    assert events[-2]["usage"] == {"input_tokens": 7, "output_tokens": 0}


def test_whitespace_only_content_makes_no_text_block() -> None:
    events = replay([make_line("\n\n"), make_line("", tool_calls=[make_call()]), make_line("\n"), make_done()])
    assert starts(events) == ["tool_use"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_content_and_done_in_the_same_line() -> None:
    events = replay([{**make_done(eval_count=2), "message": {"role": "assistant", "content": "all at once"}}])
    assert starts(events) == ["text"]


def test_string_arguments_are_parsed() -> None:
    events = replay([make_line(tool_calls=[make_call(arguments='{"command": "pwd"}')]), make_done()])
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": '{"command":"pwd"}'}]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (make_call(name=None), "Ollama sent a tool call without a function name"),
        (make_call(arguments="[1, 2]"), "Ollama sent arguments for Bash that are not a JSON object"),
    ],
)
def test_unreadable_tool_calls_end_the_stream_with_an_error(call: dict[str, Any], message: str) -> None:
    events = replay([make_line(tool_calls=[call, make_call()]), make_done()])
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": message}}


def test_non_dict_items_are_ignored() -> None:
    events = replay(["junk", 3, make_line("ok"), make_done()])
    assert starts(events) == ["text"]


def test_model_not_found_mid_stream_is_not_found() -> None:
    events = replay([{"error": 'model "x" not found, try pulling it first'}])
    assert events[-1]["error"]["type"] == "not_found_error"


def test_printed_calls_are_not_parsed_when_the_model_does_not_print_them() -> None:
    text = '{"name": "Bash", "arguments": {"command": "ls"}}'
    assert starts(replay([make_line(text), make_done()])) == ["text"]
    printed = replay([make_line(text), make_done()], ModelCapabilities(text_tool_calls=True))
    assert starts(printed) == ["tool_use"]


# -- from_upstream --------------------------------------------------------------------------


def make_message(body: dict[str, Any], caps: ModelCapabilities | None = None) -> dict[str, Any]:
    return from_upstream(body, message_id="msg_1", model="claude-sonnet-4-5", request=REQUEST,
                         caps=caps or ModelCapabilities())


def test_thinking_field_and_think_tags_both_become_thinking() -> None:
    message = make_message({**make_done(), "message": {"role": "assistant", "thinking": "first. ",
                                                       "content": "<think>second.</think>answer"}})
    assert [block["type"] for block in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["thinking"] == "first. second."
    assert message["content"][0]["signature"].startswith("lynkr-synthetic:")


def test_two_calls_get_distinct_deterministic_ids() -> None:
    body = {**make_done(), "message": {"role": "assistant", "content": "", "tool_calls": [make_call(), make_call()]}}
    first, second = make_message(body)["content"]
    assert first["id"] != second["id"]
    assert first["id"].startswith("toolu_")
    assert make_message(body)["content"][0]["id"] == first["id"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"error": "something broke"}, (500, "api_error", "something broke")),
        ({**make_done(), "message": {"role": "assistant", "tool_calls": [make_call(name=None)]}},
         (500, "api_error", "Ollama sent a tool call without a function name")),
    ],
)
def test_unusable_bodies_raise(body: dict[str, Any], error: tuple[int, str, str]) -> None:
    with pytest.raises(UpstreamFormatError) as caught:
        make_message(body)
    assert (caught.value.status, caught.value.error_type, caught.value.message) == error


def test_empty_answer_has_no_blocks() -> None:
    message = make_message({"model": "m", "done": True, "done_reason": "load"})
    assert message["content"] == []
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_a_done_line_after_nothing_and_without_a_reason_is_an_error() -> None:
    done = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}
    events = replay([make_line(), done])
    assert events[-1] == {"type": "error", "error": {
        "type": "api_error", "message": "Ollama ended the stream without answering (no content and no done_reason)."}}


def test_a_done_line_with_a_reason_and_no_content_is_an_empty_answer() -> None:
    events = replay([make_line(), make_done("stop")])
    assert [event["type"] for event in events] == ["message_start", "message_delta", "message_stop"]
