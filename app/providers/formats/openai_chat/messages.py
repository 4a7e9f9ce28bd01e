"""Anthropic conversation turns as chat-completions ``messages``.

System text (top-level and ``role: "system"`` turns) keeps its order; tool results become
``role: "tool"`` messages right after the assistant turn that made the calls (media from them
moves to a following user message); thinking is replayed only as ``reasoning_content`` to
targets that want it; and a final pass repairs calls without results and results without
calls, which strict OpenAI servers reject.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.tools import upstream_tool_id, upstream_tool_name

Msg = dict[str, Any]
MISSING_RESULT = "[no result: this tool call was interrupted before it returned]"
PDF_OMITTED = "[PDF document omitted: this model cannot read files]"
IMAGE_OMITTED = "[image omitted: this model cannot read images]"
ATTACHMENTS_MOVED = "(attachments follow in the next message)"


def convert_messages(request: dict[str, Any], caps: ModelCapabilities) -> list[Msg]:
    """The whole conversation, system prompt first, as chat-completions messages."""
    return conversation(request, caps, assistant_messages, user_messages)


TurnConverter = Callable[[Any, ModelCapabilities], list[Msg]]


def conversation(request: dict[str, Any], caps: ModelCapabilities, assistant: TurnConverter,
                 user: TurnConverter) -> list[Msg]:
    """System prompt, then every turn through ``assistant``/``user``, tool pairs repaired.

    Shared by the chat-completions and Ollama formats, which differ only in how one turn looks.
    """
    out: list[Msg] = []
    system = text_of(request.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for message in request.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role == "system":
            text = text_of(content)
            out += [{"role": "system", "content": text}] if text else []
        elif role == "assistant":
            out += assistant(content, caps)
        else:
            out += user(content, caps)
    return repair_tool_pairs(out)


def blocks_of(content: Any) -> list[dict[str, Any]]:
    """Content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def text_of(content: Any, separator: str = "\n\n") -> str:
    """The text of a string or of the blocks that carry text (``cache_control`` and the rest dropped)."""
    texts = [b["text"] for b in blocks_of(content) if isinstance(b.get("text"), str) and b["text"]]
    return separator.join(texts)


# -- content parts --------------------------------------------------------------------------


def content_part(block: dict[str, Any], caps: ModelCapabilities) -> dict[str, Any] | None:
    """One user-visible Anthropic block as a content part; None when nothing is left of it."""
    kind = block.get("type")
    if kind == "image":
        return image_part(block, caps)
    if kind == "document":
        return document_part(block, caps)
    if kind == "tool_reference" and isinstance(block.get("tool_name"), str):
        return _text(f"Tool {upstream_tool_name(block['tool_name'])} is now available.")
    if kind == "search_result":
        header = f"[search result: {block.get('title', '')} ({block.get('source', '')})]"
        return _text("\n".join([header, text_of(block.get("content"), "\n")]).rstrip())
    if kind in ("thinking", "redacted_thinking", "tool_use", "tool_result"):
        return None
    text = block.get("text")
    return _text(text) if isinstance(text, str) and text else None


def image_part(block: dict[str, Any], caps: ModelCapabilities) -> dict[str, Any]:
    """An image block as an ``image_url`` part (base64 as a data URL)."""
    if not caps.vision:
        return _text(IMAGE_OMITTED)
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = source.get("url", "")
    else:
        return _text("[image omitted: unsupported image source]")
    return {"type": "image_url", "image_url": {"url": url}}


def document_part(block: dict[str, Any], caps: ModelCapabilities) -> dict[str, Any]:
    """A document block: a ``file`` part for PDF-capable models, else its text or a placeholder."""
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "text":
        return _text(str(source.get("data", "")))
    if kind == "content":
        return _text(text_of(source.get("content")) or PDF_OMITTED)
    if not caps.pdf_input:
        return _text(PDF_OMITTED)
    if kind == "base64" and source.get("media_type", "application/pdf") == "application/pdf":
        title = given if isinstance(given := block.get("title"), str) else "document"
        filename = title if title.lower().endswith(".pdf") else f"{title}.pdf"
        data = f"data:application/pdf;base64,{source.get('data', '')}"
        return {"type": "file", "file": {"filename": filename, "file_data": data}}
    where = f" ({source['url']})" if kind == "url" else ""
    return _text(f"[document omitted{where}: only inline PDF data can be forwarded]")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string (the form every server takes), else the parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


# -- turns ----------------------------------------------------------------------------------


def user_messages(content: Any, caps: ModelCapabilities) -> list[Msg]:
    """A user turn: its tool results as tool messages, then the rest as one user message."""
    tools: list[Msg] = []
    parts: list[dict[str, Any]] = []
    for block in blocks_of(content):
        if block.get("type") == "tool_result":
            message, media = tool_result_message(block, caps)
            tools.append(message)
            parts += media
        else:
            part = content_part(block, caps)
            parts += [part] if part else []
    return tools + ([{"role": "user", "content": parts_content(parts)}] if parts else [])


def tool_result_message(block: dict[str, Any], caps: ModelCapabilities) -> tuple[Msg, list[dict[str, Any]]]:
    """A ``tool_result`` as a tool message, plus the media it carried (for a user message)."""
    call_id = upstream_tool_id(str(block.get("tool_use_id", "")))
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for inner in blocks_of(block.get("content")):
        part = content_part(inner, caps)
        if part is None:
            continue
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            media.append(part)
    text = "\n".join(texts) or (ATTACHMENTS_MOVED if media else "")
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    if media:
        media.insert(0, _text(f"[attachments from the result of tool call {call_id}]"))
    return {"role": "tool", "tool_call_id": call_id, "content": text}, media


def assistant_messages(content: Any, caps: ModelCapabilities) -> list[Msg]:
    """An assistant turn: text, ``tool_calls`` and (for replay targets) ``reasoning_content``.

    Thinking is never sent as visible text, and Anthropic signatures never go upstream.
    """
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    for block in blocks_of(content):
        kind = block.get("type")
        if kind == "tool_use":
            calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning += [block["thinking"]] if isinstance(block.get("thinking"), str) else []
        elif kind != "redacted_thinking":
            part = content_part(block, caps)
            texts += [part["text"]] if part and part["type"] == "text" else []
    message: Msg = {"role": "assistant", "content": "\n\n".join(texts) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    if caps.reasoning_replay and any(reasoning):
        message["reasoning_content"] = "\n\n".join(r for r in reasoning if r)
    if not (texts or calls or "reasoning_content" in message):
        return []
    return [message]


def tool_call(block: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block as a chat-completions tool call (arguments as a JSON string)."""
    arguments = orjson.dumps(block.get("input") or {}).decode()
    name = upstream_tool_name(str(block.get("name", "")))
    call_id = upstream_tool_id(str(block.get("id", "")))
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- repair ---------------------------------------------------------------------------------


def repair_tool_pairs(messages: list[Msg]) -> list[Msg]:
    """Put each call's result right after its assistant message; repair orphans.

    A call with no result gets a placeholder result; a result with no matching call (or a
    second result for one call) becomes user text. OpenAI rejects both otherwise.
    """
    out: list[Msg] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        if message["role"] == "assistant" and message.get("tool_calls"):
            end = next((j for j in range(i + 1, len(messages)) if messages[j]["role"] == "assistant"), None)
            end = len(messages) if end is None else end
            out.append(message)
            out += _answered(message["tool_calls"], messages[i + 1 : end])
            i = end
        else:
            out.append(_orphan(message) if message["role"] == "tool" else message)
            i += 1
    return out


def _answered(calls: list[dict[str, Any]], window: list[Msg]) -> list[Msg]:
    wanted = list(dict.fromkeys(call["id"] for call in calls))
    found: dict[str, Msg] = {}
    rest: list[Msg] = []
    for message in window:
        call_id = message.get("tool_call_id")
        if message["role"] == "tool" and isinstance(call_id, str) and call_id in wanted and call_id not in found:
            found[call_id] = message
        else:
            rest.append(_orphan(message) if message["role"] == "tool" else message)
    missing = [{"role": "tool", "tool_call_id": call_id, "content": MISSING_RESULT} for call_id in wanted]
    answers = [found.get(call_id) or placeholder for call_id, placeholder in zip(wanted, missing, strict=True)]
    return answers + rest


def _orphan(message: Msg) -> Msg:
    header = f"[result of tool call {message.get('tool_call_id')}]"
    return {"role": "user", "content": f"{header}\n{message.get('content') or ''}".rstrip()}
