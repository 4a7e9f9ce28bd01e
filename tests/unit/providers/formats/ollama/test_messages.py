"""Anthropic turns as Ollama chat messages: string content, bare base64 images, tool messages by name."""

from __future__ import annotations

from typing import Any

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.messages import (
    IMAGE_SOURCE_OMITTED,
    assistant_messages,
    convert_messages,
    tool_call,
    tool_result_message,
    user_messages,
)

CAPS = ModelCapabilities()
PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
URL_IMAGE = {"type": "image", "source": {"type": "url", "url": "http://x/a.png"}}


def conversation() -> dict[str, Any]:
    return {"system": "Be brief.", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "look"}, PNG, URL_IMAGE]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                          {"type": "text", "text": "reading"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "a"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
             "content": [{"type": "text", "text": "nope"}, {"type": "image", "source": {"type": "base64",
                                                                                        "data": "BBB"}}]},
            {"type": "text", "text": "and?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2", "name": "Grep", "input": {}}]},
        {"role": "user", "content": "go on"},
    ]}


def test_a_whole_conversation() -> None:
    assert convert_messages(conversation(), CAPS) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "look\n\n[image omitted: Ollama cannot fetch image URLs (http://x/a.png)]",
         "images": ["AAA"]},
        {"role": "assistant", "content": "reading", "thinking": "hmm",
         "tool_calls": [{"function": {"name": "Read", "arguments": {"p": "a"}}}]},
        {"role": "tool", "content": "Error: nope", "tool_name": "Read"},
        {"role": "user", "content": "[images from the result of tool call toolu_1]\n\nand?", "images": ["BBB"]},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "Grep", "arguments": {}}}]},
        {"role": "tool", "content": "[no result: this tool call was interrupted before it returned]",
         "tool_name": "Grep"},
        {"role": "user", "content": "go on"},
    ]


def test_a_model_without_vision_gets_placeholders() -> None:
    blind = ModelCapabilities(vision=False)
    assert convert_messages(conversation(), blind)[1] == {
        "role": "user",
        "content": "look\n\n[image omitted: this model cannot read images]\n\n[image omitted: this model cannot "
                   "read images]"}


def test_user_turn_pieces() -> None:
    content = [{"type": "tool_reference", "tool_name": "Grep"},
               {"type": "image", "source": {"type": "file", "file_id": "f"}}]
    assert user_messages(content, CAPS) == [
        {"role": "user", "content": f"Tool Grep is now available.\n\n{IMAGE_SOURCE_OMITTED}"}]
    assert user_messages("plain", CAPS) == [{"role": "user", "content": "plain"}]
    assert user_messages([], CAPS) == []


def test_a_tool_result_keeps_the_call_id_until_the_end_and_says_where_images_went() -> None:
    block = {"type": "tool_result", "tool_use_id": "toolu_9", "content": [PNG]}
    assert tool_result_message(block, CAPS) == (
        {"role": "tool", "tool_call_id": "toolu_9", "content": "(images follow in the next message)"}, ["AAA"])
    assert tool_result_message({"type": "tool_result", "tool_use_id": "t", "is_error": True}, CAPS) == (
        {"role": "tool", "tool_call_id": "t", "content": "Error"}, [])
    assert tool_result_message({"type": "tool_result", "tool_use_id": "t", "content": "ok"}, CAPS)[0][
        "content"] == "ok"


def test_assistant_turns_never_send_signatures_or_redacted_thinking() -> None:
    assert assistant_messages([{"type": "redacted_thinking", "data": "x"},
                               {"type": "thinking", "thinking": "", "signature": "s"}], CAPS) == []
    assert assistant_messages("plain", CAPS) == [{"role": "assistant", "content": "plain"}]
    assert tool_call({"type": "tool_use", "id": "toolu_1", "name": "Read", "input": "not an object"}) == {
        "id": "toolu_1", "function": {"name": "Read", "arguments": {}}}
