"""Anthropic turns as chat-completions messages: parts, tool pairs in order and repaired, reasoning replay."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.messages import (
    MISSING_RESULT,
    PDF_OMITTED,
    assistant_messages,
    blocks_of,
    content_part,
    convert_messages,
    document_part,
    parts_content,
    repair_tool_pairs,
    text_of,
)

CAPS = ModelCapabilities(pdf_input=True)


def conversation() -> dict[str, Any]:
    return {"system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "B"}], "messages": [
        {"role": "user", "content": [{"type": "text", "text": "see"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                                                  "data": "QQ"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "text", "text": "ok"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "a"}},
                                          {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
                {"type": "text", "text": "two"}, {"type": "image", "source": {"type": "url", "url": "http://i"}}]},
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "stray"}]},
        {"role": "system", "content": "mid"},
    ]}


def test_a_whole_conversation_with_repaired_pairs() -> None:
    read_a = {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": '{"p":"a"}'}}
    read_b = {"id": "toolu_2", "type": "function", "function": {"name": "Read", "arguments": "{}"}}
    assert convert_messages(conversation(), CAPS) == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": [{"type": "text", "text": "see"},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ"}}]},
        {"role": "assistant", "content": "ok", "tool_calls": [read_a, read_b]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": MISSING_RESULT},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "two"},
        {"role": "user", "content": "[result of tool call toolu_9]\nstray"},
        {"role": "user", "content": [{"type": "text", "text": "[attachments from the result of tool call toolu_2]"},
                                     {"type": "image_url", "image_url": {"url": "http://i"}}]},
        {"role": "system", "content": "mid"},
    ]


def test_reasoning_is_replayed_only_to_models_that_want_it() -> None:
    replaying = convert_messages(conversation(), ModelCapabilities(reasoning_replay=True))
    assert replaying[2]["reasoning_content"] == "hm"
    assert "reasoning_content" not in convert_messages(conversation(), CAPS)[2]
    assert assistant_messages([{"type": "thinking", "thinking": "only"}], ModelCapabilities(reasoning_replay=True)) == [
        {"role": "assistant", "content": "", "reasoning_content": "only"}]
    assert assistant_messages([{"type": "thinking", "thinking": "only"}], CAPS) == []


def test_a_call_only_turn_has_null_content() -> None:
    assert assistant_messages([{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": None}], CAPS) == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}]}]


@pytest.mark.parametrize(("block", "caps", "part"), [
    ({"type": "document", "title": "Spec", "source": {"type": "base64", "media_type": "application/pdf",
                                                      "data": "JV"}}, CAPS,
     {"type": "file", "file": {"filename": "Spec.pdf", "file_data": "data:application/pdf;base64,JV"}}),
    ({"type": "document", "source": {"type": "base64", "data": "JV"}}, CAPS,
     {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JV"}}),
    ({"type": "document", "source": {"type": "url", "url": "http://d.pdf"}}, CAPS,
     {"type": "text", "text": "[document omitted (http://d.pdf): only inline PDF data can be forwarded]"}),
    ({"type": "document", "source": {"type": "text", "data": "plain"}}, ModelCapabilities(),
     {"type": "text", "text": "plain"}),
    ({"type": "document", "source": {"type": "base64", "data": "JV"}}, ModelCapabilities(),
     {"type": "text", "text": PDF_OMITTED}),
])
def test_documents(block: dict[str, Any], caps: ModelCapabilities, part: dict[str, Any]) -> None:
    assert document_part(block, caps) == part


@pytest.mark.parametrize(("block", "part"), [
    ({"type": "search_result", "title": "T", "source": "http://s",
      "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
     {"type": "text", "text": "[search result: T (http://s)]\na\nb"}),
    ({"type": "tool_reference", "tool_name": "Grep"}, {"type": "text", "text": "Tool Grep is now available."}),
    ({"type": "image", "source": {"type": "file", "file_id": "f"}},
     {"type": "text", "text": "[image omitted: unsupported image source]"}),
    ({"type": "thinking", "thinking": "x"}, None),
    ({"type": "text", "text": ""}, None),
    ({"type": "brand_new", "text": "carried"}, {"type": "text", "text": "carried"}),
])
def test_content_parts(block: dict[str, Any], part: dict[str, Any] | None) -> None:
    assert content_part(block, CAPS) == part


def test_helpers() -> None:
    assert blocks_of("hi") == [{"type": "text", "text": "hi"}]
    assert blocks_of("") == []
    assert blocks_of([{"type": "text"}, "junk", 3]) == [{"type": "text"}]
    assert blocks_of(None) == []
    assert text_of([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}], " ") == "a b"
    assert parts_content([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\n\nb"
    image = {"type": "image_url", "image_url": {"url": "u"}}
    assert parts_content([image]) == [image]


def test_a_second_result_for_one_call_becomes_user_text() -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}
    first = {"role": "tool", "tool_call_id": "c1", "content": "one"}
    second = {"role": "tool", "tool_call_id": "c1", "content": "again"}
    assert repair_tool_pairs([call, first, second]) == [
        call, first, {"role": "user", "content": "[result of tool call c1]\nagain"}]
    assert repair_tool_pairs([{"role": "tool", "tool_call_id": "x", "content": ""}]) == [
        {"role": "user", "content": "[result of tool call x]"}]
