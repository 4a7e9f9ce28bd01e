"""Anthropic conversation turns as Ollama ``/api/chat`` messages.

Ollama messages carry plain string ``content``; images travel as bare base64 strings in the
message's ``images`` list (Ollama fetches no URLs, so URL images become a text placeholder);
assistant ``tool_calls`` take their arguments as an object, not a JSON string; tool results are
``role: "tool"`` messages naming the tool (``tool_name``) right after the assistant turn; and
prior reasoning goes back in the assistant message's ``thinking`` field, never as text.

Pairing reuses the chat-completions repair pass: calls and results carry their Anthropic ids
while the messages are built, orphans are repaired, then the ids are stripped (Ollama has none).
"""

from __future__ import annotations

from typing import Any

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.messages import (
    IMAGE_OMITTED,
    PDF_OMITTED,
    blocks_of,
    content_part,
    conversation,
)

Msg = dict[str, Any]
IMAGE_URL_OMITTED = "[image omitted: Ollama cannot fetch image URLs ({url})]"
IMAGE_SOURCE_OMITTED = "[image omitted: unsupported image source]"


def convert_messages(request: dict[str, Any], caps: ModelCapabilities) -> list[Msg]:
    """The whole conversation, system prompt first, as Ollama chat messages."""
    names = _tool_names(request)
    return [_without_ids(m, names) for m in conversation(request, caps, assistant_messages, user_messages)]


# -- content --------------------------------------------------------------------------------


class _Parts:
    """Text and images collected for one Ollama message."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.images: list[str] = []

    def add(self, block: dict[str, Any], caps: ModelCapabilities) -> None:
        kind = block.get("type")
        if kind == "image":
            self._image(block, caps)
        elif kind == "tool_reference" and isinstance(block.get("tool_name"), str):
            # Deferred tools are sent in full, so the reference only says the tool is there.
            self.texts.append(f"Tool {block['tool_name']} is now available.")
        else:
            part = content_part(block, caps)
            if part is not None:
                # Ollama takes no file parts: a PDF a model could read elsewhere is a placeholder here.
                self.texts.append(part["text"] if part["type"] == "text" else PDF_OMITTED)

    def _image(self, block: dict[str, Any], caps: ModelCapabilities) -> None:
        source = block.get("source") or {}
        if not caps.vision:
            self.texts.append(IMAGE_OMITTED)
        elif source.get("type") == "base64" and isinstance(source.get("data"), str):
            self.images.append(source["data"])
        elif source.get("type") == "url":
            self.texts.append(IMAGE_URL_OMITTED.format(url=source.get("url", "")))
        else:
            self.texts.append(IMAGE_SOURCE_OMITTED)

    def message(self, role: str) -> Msg:
        out: Msg = {"role": role, "content": "\n\n".join(self.texts)}
        if self.images:
            out["images"] = self.images
        return out

    def __bool__(self) -> bool:
        return bool(self.texts or self.images)


# -- turns ----------------------------------------------------------------------------------


def user_messages(content: Any, caps: ModelCapabilities) -> list[Msg]:
    """A user turn: its tool results as tool messages, then the rest as one user message.

    Images a tool returned move to that user message, after a line saying where they came from.
    """
    tools: list[Msg] = []
    parts = _Parts()
    moved = _Parts()
    for block in blocks_of(content):
        if block.get("type") == "tool_result":
            message, images = tool_result_message(block, caps)
            tools.append(message)
            if images:
                moved.texts.append(f"[images from the result of tool call {block.get('tool_use_id')}]")
                moved.images += images
        else:
            parts.add(block, caps)
    parts.texts = moved.texts + parts.texts
    parts.images = moved.images + parts.images
    return tools + ([parts.message("user")] if parts else [])


def tool_result_message(block: dict[str, Any], caps: ModelCapabilities) -> tuple[Msg, list[str]]:
    """A ``tool_result`` as a tool message (still keyed by the call id), plus its images."""
    parts = _Parts()
    for inner in blocks_of(block.get("content")):
        parts.add(inner, caps)
    text = "\n".join(parts.texts) or ("(images follow in the next message)" if parts.images else "")
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}, parts.images


def assistant_messages(content: Any, caps: ModelCapabilities) -> list[Msg]:
    """An assistant turn: text, ``tool_calls`` (arguments as objects) and prior ``thinking``.

    Thinking is never sent as visible text; Anthropic signatures never go upstream.
    """
    parts = _Parts()
    calls: list[dict[str, Any]] = []
    thinking: list[str] = []
    for block in blocks_of(content):
        kind = block.get("type")
        if kind == "tool_use":
            calls.append(tool_call(block))
        elif kind == "thinking":
            thinking += [block["thinking"]] if isinstance(block.get("thinking"), str) and block["thinking"] else []
        elif kind != "redacted_thinking":
            parts.add(block, caps)
    if not (parts.texts or calls or thinking):
        return []
    message: Msg = {"role": "assistant", "content": "\n\n".join(parts.texts)}
    if thinking:
        message["thinking"] = "\n\n".join(thinking)
    if calls:
        message["tool_calls"] = calls
    return [message]


def tool_call(block: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block as an Ollama tool call; ``id`` is only kept for pairing."""
    arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
    return {"id": str(block.get("id", "")), "function": {"name": str(block.get("name", "")), "arguments": arguments}}


# -- ids ------------------------------------------------------------------------------------


def _tool_names(request: dict[str, Any]) -> dict[str, str]:
    """Anthropic tool_use id -> tool name, over the whole conversation."""
    names: dict[str, str] = {}
    for message in request.get("messages") or []:
        for block in blocks_of(message.get("content") if isinstance(message, dict) else None):
            if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                names[str(block.get("id", ""))] = block["name"]
    return names


def _without_ids(message: Msg, names: dict[str, str]) -> Msg:
    """Ollama form: calls lose their ids, tool messages name their tool instead."""
    if message.get("tool_calls"):
        calls = [{"function": call["function"]} for call in message["tool_calls"]]
        return {**message, "tool_calls": calls}
    if message["role"] == "tool":
        out = {k: v for k, v in message.items() if k != "tool_call_id"}
        name = names.get(str(message.get("tool_call_id")))
        return {**out, "tool_name": name} if name else out
    return message
