"""The Anthropic Messages API vocabulary, as TypedDicts for documentation; no logic.

Every module speaks this one format: a request is a ``MessagesRequest`` from the blueprint
to the provider boundary, a response is a ``Message``, a stream is an iterator of event dicts.
The dicts stay plain — unknown fields are carried, never validated away.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

# Signatures of thinking blocks that Lynkr synthesised from a non-Anthropic model's
# reasoning start with this prefix, so they are never sent to an Anthropic upstream.
SYNTHETIC_SIGNATURE_PREFIX = "lynkr-synthetic:"

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str


class ThinkingBlock(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: NotRequired[str]


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(TypedDict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: NotRequired[str | list[dict[str, Any]]]
    is_error: NotRequired[bool]


class MessageParam(TypedDict):
    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]


class Tool(TypedDict):
    name: str
    description: NotRequired[str]
    input_schema: dict[str, Any]
    defer_loading: NotRequired[bool]


class MessagesRequest(TypedDict):
    model: str
    max_tokens: int
    messages: list[MessageParam]
    system: NotRequired[str | list[dict[str, Any]]]
    tools: NotRequired[list[Tool]]
    tool_choice: NotRequired[dict[str, Any]]
    stream: NotRequired[bool]
    thinking: NotRequired[dict[str, Any]]
    metadata: NotRequired[dict[str, Any]]
    stop_sequences: NotRequired[list[str]]
    temperature: NotRequired[float]
    top_p: NotRequired[float]


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: NotRequired[int]
    cache_creation_input_tokens: NotRequired[int]


class Message(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage
