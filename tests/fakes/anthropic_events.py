"""Builders for Anthropic Messages bodies and stream events, as an upstream would send them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

_ids = itertools.count(1)
DEFAULT_USAGE = {"input_tokens": 12, "output_tokens": 6}


def next_id(prefix: str) -> str:
    """A fresh id such as ``msg_fake_000001``."""
    return f"{prefix}_fake_{next(_ids):06d}"


def text_block(text: str) -> dict[str, Any]:
    """A text content block."""
    return {"type": "text", "text": text}


def tool_use_block(name: str, tool_input: dict[str, Any], tool_id: str | None = None) -> dict[str, Any]:
    """A tool_use content block."""
    return {"type": "tool_use", "id": tool_id or next_id("toolu"), "name": name, "input": tool_input}


def message(content: list[dict[str, Any]], *, model: str = "databricks-claude-sonnet-4-5",
            stop_reason: str = "end_turn", usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A complete Anthropic ``Message`` body."""
    return {
        "id": next_id("msg"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": None,
        "usage": dict(usage or DEFAULT_USAGE),
    }


def message_start(model: str = "databricks-claude-sonnet-4-5", input_tokens: int = 12) -> dict[str, Any]:
    """The ``message_start`` event of a fresh message."""
    return {"type": "message_start", "message": {
        "id": next_id("msg"), "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }}


def text_start(index: int = 0) -> dict[str, Any]:
    """Opens a text block."""
    return {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}


def text_delta(text: str, index: int = 0) -> dict[str, Any]:
    """A piece of text for the open text block."""
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def block_stop(index: int = 0) -> dict[str, Any]:
    """Closes block ``index``."""
    return {"type": "content_block_stop", "index": index}


def message_end(stop_reason: str = "end_turn", output_tokens: int = 6) -> list[dict[str, Any]]:
    """``message_delta`` with the stop reason, then ``message_stop``."""
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
         "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


def text_events(pieces: Iterable[str], *, model: str = "databricks-claude-sonnet-4-5",
                stop_reason: str = "end_turn", input_tokens: int = 12, output_tokens: int = 6) -> list[dict[str, Any]]:
    """A whole stream answering with one text block made of ``pieces``."""
    return [
        message_start(model, input_tokens), text_start(0),
        *(text_delta(piece) for piece in pieces),
        block_stop(0), *message_end(stop_reason, output_tokens),
    ]


def tool_use_events(name: str, tool_input: dict[str, Any], *, tool_id: str | None = None,
                    preface: str | None = None, model: str = "databricks-claude-sonnet-4-5") -> list[dict[str, Any]]:
    """A whole stream answering with an optional text block, then one tool_use block."""
    events: list[dict[str, Any]] = [message_start(model)]
    index = 0
    if preface:
        events += [text_start(0), text_delta(preface), block_stop(0)]
        index = 1
    arguments = json.dumps(tool_input)
    middle = len(arguments) // 2
    events += [
        {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": tool_id or next_id("toolu"), "name": name, "input": {}}},
        {"type": "content_block_delta", "index": index,
         "delta": {"type": "input_json_delta", "partial_json": arguments[:middle]}},
        {"type": "content_block_delta", "index": index,
         "delta": {"type": "input_json_delta", "partial_json": arguments[middle:]}},
        block_stop(index), *message_end("tool_use", 20),
    ]
    return events


def error_body(error_type: str, message_text: str) -> dict[str, Any]:
    """Anthropic's error envelope."""
    return {"type": "error", "error": {"type": error_type, "message": message_text}}


def sse_frame(event: dict[str, Any]) -> bytes:
    """One event as Anthropic frames it: ``event:`` line, ``data:`` line, blank line."""
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
