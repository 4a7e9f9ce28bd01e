"""An MCP ``CallToolResult`` as the content of an Anthropic ``tool_result`` block.

- ``text`` → a text block; ``image`` → an image block (base64 source);
- an embedded ``resource`` → its text (headed by its URI), or an image block for an image blob,
  or a line naming a binary blob that cannot be shown; a ``resource_link`` → a line with its URI;
- ``audio`` → a line saying it was left out (the Messages API takes no audio in tool results);
- ``structuredContent`` → its JSON as text when the result gives no text of its own.

``isError`` becomes the block's ``is_error``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}  # what the Messages API accepts


@dataclass(frozen=True)
class MappedResult:
    """The blocks a tool result carries, and whether the tool reported an error."""

    blocks: list[dict[str, Any]]
    is_error: bool

    def text(self) -> str:
        """The text blocks joined, for an error message or a plain-text result."""
        return "\n".join(block["text"] for block in self.blocks if block["type"] == "text")


def map_result(result: dict[str, Any]) -> MappedResult:
    """The Anthropic content for one ``CallToolResult``."""
    content = result.get("content")
    blocks = [block for item in (content if isinstance(content, list) else []) if (block := _block(item))]
    structured = result.get("structuredContent")
    if structured is not None and not any(block["type"] == "text" for block in blocks):
        blocks.append(_text(json.dumps(structured, ensure_ascii=False, indent=2)))
    if not blocks:
        blocks.append(_text("(the tool returned no content)"))
    return MappedResult(blocks, result.get("isError") is True)


def _block(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "text":
        return _text(str(item.get("text", "")))
    if kind == "image":
        return _image(item.get("mimeType"), item.get("data"))
    if kind == "audio":
        return _text(f"[audio ({item.get('mimeType', 'unknown type')}) left out: it cannot be shown here]")
    if kind == "resource" and isinstance(item.get("resource"), dict):
        return _resource(item["resource"])
    if kind == "resource_link":
        name = item.get("name") or item.get("title") or ""
        return _text(f"[resource link: {item.get('uri', '')}{f' ({name})' if name else ''}]")
    return _text(f"[content of type '{kind}' left out]")


def _resource(resource: dict[str, Any]) -> dict[str, Any]:
    uri = resource.get("uri", "")
    mime = resource.get("mimeType")
    if isinstance(resource.get("text"), str):
        return _text(f"[resource {uri}]\n{resource['text']}")
    if mime in IMAGE_TYPES and isinstance(resource.get("blob"), str):
        return _image(mime, resource["blob"])
    size = len(resource.get("blob") or "") * 3 // 4
    return _text(f"[binary resource {uri} ({mime or 'unknown type'}, about {size} bytes) left out]")


def _image(mime: Any, data: Any) -> dict[str, Any]:
    if mime not in IMAGE_TYPES or not isinstance(data, str):
        return _text(f"[image of type '{mime}' left out: the model accepts {', '.join(sorted(IMAGE_TYPES))}]")
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def _text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}
