"""Tool arguments: repair, streamed JSON checks, and tool calls printed as text."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.providers.formats.openai_chat.args import (
    ArgumentStream,
    TextCallBuffer,
    parse_arguments,
    parse_text_tool_calls,
)
from app.providers.formats.openai_chat.reply import ThinkSplitter, split_think


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        (None, {}),
        ({"a": 1}, {"a": 1}),
        ("{'a': 'b', 'c': True}", {"a": "b", "c": True}),
        ('{"a": 1,}', {"a": 1}),
        ('"{\\"a\\": 1}"', {"a": 1}),
        ("[1, 2]", None),
        ("hello", None),
        (42, None),
    ],
)
def test_parse_arguments(raw: Any, expected: Any) -> None:
    assert parse_arguments(raw) == expected


def test_truncated_arguments_are_not_repaired_when_asked_not_to() -> None:
    assert parse_arguments('{"content": "half', repair=False) is None
    assert parse_arguments('{"content": "half') == {"content": "half"}


VALID = [
    '{"a": 1}',
    '{"a": [1, -2.5e3, true, false, null, {"b": "c"}], "d": {}}',
    '{"s": "quote \\" backslash \\\\ unicode \\u00e9 slash \\/"}',
    '  {  "nested" : { "deep" : [ [ ] , { } ] } }  ',
    "{}",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_arguments_stream_through_in_any_split(text: str) -> None:
    for cut in range(len(text) + 1):
        stream = ArgumentStream()
        sent = stream.feed(text[:cut]) + stream.feed(text[cut:])
        assert sent == text
        assert stream.complete


@pytest.mark.parametrize(
    "text",
    ["{'a': 1}", '{"a": 1,}', '{"a" 1}', "[1]", '{"a": tru}', '{"a": 1}}', '{"a": "\\x"}', '{"a": 1} x', "nope"],
)
def test_broken_arguments_stop_streaming(text: str) -> None:
    stream = ArgumentStream()
    stream.feed(text)
    assert not stream.complete
    assert stream.broken


def test_raw_control_characters_are_escaped_on_the_way() -> None:
    stream = ArgumentStream()
    sent = stream.feed('{"content": "line1\nline2\ttab') + stream.feed('\x01"}')
    assert orjson.loads(sent) == {"content": "line1\nline2\ttab\x01"}
    assert stream.complete


def test_nothing_is_forwarded_once_broken() -> None:
    stream = ArgumentStream()
    assert stream.feed('{"a": ') == '{"a": '
    assert stream.feed("'b'}") == ""
    assert stream.feed("}") == ""
    assert "".join(stream.raw) == "{\"a\": 'b'}}"


NAMES = {"Bash": "Bash", "Read": "Read"}


@pytest.mark.parametrize(
    ("text", "rest", "calls"),
    [
        ('<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>', "", [("Bash", {"command": "ls"})]),
        (
            'Sure.\n<tool_call>\n{"name": "Read", "arguments": "{\\"file_path\\": \\"a\\"}"}\n</tool_call>',
            "Sure.",
            [("Read", {"file_path": "a"})],
        ),
        (
            '<tool_call>{"name": "Bash", "arguments": {"command": "a"}}</tool_call>'
            '<tool_call>{"name": "Bash", "arguments": {"command": "b"}}',
            "",
            [("Bash", {"command": "a"}), ("Bash", {"command": "b"})],
        ),
        ('{"name": "Bash", "parameters": {"command": "ls"}}', "", [("Bash", {"command": "ls"})]),
        ('{"name": "Deploy", "arguments": {}}', '{"name": "Deploy", "arguments": {}}', []),
        ('{"name": "Bash"}', '{"name": "Bash"}', []),
        ('Use {"name": "Bash", "arguments": {}} like this.', 'Use {"name": "Bash", "arguments": {}} like this.', []),
        (
            '<tool_call>{"name": "Deploy", "arguments": {}}</tool_call>',
            '<tool_call>{"name": "Deploy", "arguments": {}}</tool_call>',
            [],
        ),
    ],
)
def test_printed_tool_calls(text: str, rest: str, calls: list[Any]) -> None:
    assert parse_text_tool_calls(text, NAMES) == (rest, calls)


@pytest.mark.parametrize(
    "text",
    [
        'I will run it.\n<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>',
        '{"name": "Bash", "arguments": {"command": "ls"}}',
        "Plain answer with a < sign and <tool but no call.",
        '{"not": "a call"}',
    ],
)
def test_text_call_buffer_is_split_independent(text: str) -> None:
    whole = TextCallBuffer(NAMES)
    expected = whole.feed(text), whole.finish()
    for cut in range(len(text) + 1):
        buffer = TextCallBuffer(NAMES)
        shown = buffer.feed(text[:cut]) + buffer.feed(text[cut:])
        rest, calls = buffer.finish()
        assert (shown + rest, calls) == (expected[0] + expected[1][0], expected[1][1])


def test_text_before_markup_streams_immediately() -> None:
    buffer = TextCallBuffer(NAMES)
    assert buffer.feed("Let me check. <tool") == "Let me check. "
    assert buffer.feed('_call>{"name": "Bash", "arguments": {}}') == ""
    assert buffer.finish() == ("", [("Bash", {})])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<think>plan</think>\n\nanswer", ("plan", "answer")),
        ("  <think>unfinished", ("unfinished", "")),
        ("no tags <think>x</think>", ("", "no tags <think>x</think>")),
        ("\n\n", ("", "")),
        ("<thi", ("", "<thi")),
        ("<think></think>answer", ("", "answer")),
    ],
)
def test_split_think(content: str, expected: tuple[str, str]) -> None:
    assert split_think(content) == expected


def test_think_splitter_is_split_independent() -> None:
    content = "\n<think>a </th b</think>\n\nanswer </think>"
    for cut in range(len(content) + 1):
        splitter = ThinkSplitter()
        pieces = splitter.feed(content[:cut]) + splitter.feed(content[cut:]) + splitter.flush()
        thinking = "".join(p for kind, p in pieces if kind == "thinking")
        text = "".join(p for kind, p in pieces if kind == "text")
        assert (thinking, text) == ("a </th b", "answer </think>")
