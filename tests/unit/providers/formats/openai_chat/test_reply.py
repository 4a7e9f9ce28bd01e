"""Pieces of a chat-completions answer: stop reasons, usage, reasoning, <think> splitting, the message."""

from __future__ import annotations

from typing import Any

import pytest

from app.anthropic.types import Usage
from app.providers.formats.openai_chat.reply import (
    ThinkSplitter,
    anthropic_message,
    anthropic_usage,
    content_text,
    partial_suffix,
    reasoning_of,
    split_think,
    stop_reason,
    thinking_signature,
)


@pytest.mark.parametrize(("finish", "has_tool_use", "expected"), [
    ("stop", False, "end_turn"),
    ("length", False, "max_tokens"),
    ("content_filter", False, "refusal"),
    ("tool_calls", False, "end_turn"),  # no call came through: not tool_use
    ("stop", True, "tool_use"),
    ("something_new", False, "end_turn"),
    (None, False, "end_turn"),
])
def test_stop_reason(finish: Any, has_tool_use: bool, expected: str) -> None:
    assert stop_reason(finish, has_tool_use=has_tool_use) == expected


def test_usage_splits_cached_prompt_tokens_out() -> None:
    assert anthropic_usage({"prompt_tokens": 100, "completion_tokens": 7,
                            "prompt_tokens_details": {"cached_tokens": 60}}) == {
        "input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60}
    assert anthropic_usage({"prompt_tokens": 100, "prompt_cache_hit_tokens": 30}) == {
        "input_tokens": 70, "output_tokens": 0, "cache_read_input_tokens": 30}
    assert anthropic_usage({"prompt_tokens": True, "completion_tokens": -3}) == {
        "input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0}
    assert anthropic_usage(None) is None


def test_reasoning_content_and_signature() -> None:
    assert reasoning_of({"reasoning_content": "a", "reasoning": "a"}) == "a"
    assert reasoning_of({"reasoning_content": "", "reasoning": "b"}) == "b"
    assert reasoning_of({"reasoning": 5}) == ""
    assert content_text([{"type": "text", "text": "a"}, {"text": None}, "x", {"text": "b"}]) == "ab"
    assert content_text(None) == ""
    assert thinking_signature("hm") == "lynkr-synthetic:b82e2178ecf4d0c5"


def test_think_tags_split_across_fragments() -> None:
    splitter = ThinkSplitter()
    ready = [splitter.feed(fragment) for fragment in ["  <thi", "nk>pla", "n</th", "ink>\n\n Hel", "lo"]]
    assert ready == [[], [("thinking", "pla")], [("thinking", "n")], [("text", "Hel")], [("text", "lo")]]
    assert splitter.flush() == []


@pytest.mark.parametrize(("content", "expected"), [
    ("<think>plan</think>Answer", ("plan", "Answer")),
    ("\n <think>plan</think>\n\nAnswer", ("plan", "Answer")),
    ("Answer <think>not leading</think>", ("", "Answer <think>not leading</think>")),
    ("<think>never closed", ("never closed", "")),
    ("<thi", ("", "<thi")),
    ("   ", ("", "")),
])
def test_split_think(content: str, expected: tuple[str, str]) -> None:
    assert split_think(content) == expected


def test_partial_suffix() -> None:
    assert partial_suffix("abc</th", "</think>") == 4
    assert partial_suffix("abc<", "</think>") == 1
    assert partial_suffix("abc</think>", "</think>") == 0
    assert partial_suffix("", "</think>") == 0


def test_the_message_orders_thinking_text_calls() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    usage: Usage = {"input_tokens": 1, "output_tokens": 2}
    assert anthropic_message(message_id="msg_1", model="m", thinking="hm", text="  ", calls=[call], stop="tool_use",
                             usage=usage) == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "lynkr-synthetic:b82e2178ecf4d0c5"}, call],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": usage}
