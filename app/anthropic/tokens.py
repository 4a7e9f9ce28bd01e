"""Offline token counting for ``/v1/messages/count_tokens`` and routing estimates.

Claude's tokenizer is not public, so text is counted with OpenAI's cl100k BPE, whose vocabulary
ships inside the ``bpe_openai`` wheel (no network). Everything that is not text is priced the way
Anthropic documents it: images by pixel area, PDFs per page, server tools at a fixed cost.
Nothing here raises on odd input: unknown shapes count their strings, or nothing.

Given a request's message notes (:mod:`app.anthropic.encoded`), each message's count and image
size are kept there, so a resent history is not counted again.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from app.anthropic.encoded import Notes, noted

if TYPE_CHECKING:
    import bpe_openai

ENCODING_NAME = "cl100k_base"
MESSAGE_OVERHEAD = 4  # role marker and turn separators, as chat formats frame each message
TOOL_OVERHEAD = 16  # framing of one definition: wrapper tags and its name/description/schema keys
SERVER_TOOL_TOKENS = 50  # {"type": "web_search_20250305", ...}: Anthropic supplies the definition
IMAGE_TOKENS = 1600  # the most Anthropic charges for one image (~1.15 megapixels); also when the size cannot be read
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_PIXELS = 1092 * 1092  # Anthropic's largest 1:1 size, "~1.15 megapixels"
PDF_PAGE_TOKENS = 3000  # ~1,500 of extracted text plus the page rendered as an image
PDF_BYTES_PER_PAGE = 60_000  # only when the page objects are hidden in compressed streams
UNKNOWN_DOCUMENT_TOKENS = PDF_PAGE_TOKENS  # URL or file-id documents: one page, a guess
REDACTED_CHARS_PER_TOKEN = 4

# bpe_openai refuses more than 200,000 tokens per call; one character can cost four tokens.
_CHUNK_CHARS = 40_000
_MAX_DEPTH = 64  # deeper nesting is abuse; stop counting rather than overflow the stack
_IMAGE_HEAD_CHARS = 1024  # base64 characters decoded to find an image's dimensions
_OPAQUE_KEYS = frozenset(
    {"type", "id", "tool_use_id", "cache_control", "signature", "data", "encrypted_content", "media_type"}
)
_PDF_PAGE = re.compile(rb"/Type\s*/Page\b")
_JPEG_SOI = b"\xff\xd8"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4/C8/CC are not frame headers
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})

_encoding: bpe_openai.Encoding | None = None
_encoding_lock = threading.Lock()


def count_text(text: str) -> int:
    """Return the cl100k token count of one string; special-token text counts as plain text."""
    if not isinstance(text, str) or not text:
        return 0
    encoding = _get_encoding()
    return sum(
        len(encoding.encode_ordinary(text[start : start + _CHUNK_CHARS]))
        for start in range(0, len(text), _CHUNK_CHARS)
    )


def count_tokens(request: dict[str, Any], notes: Sequence[Notes] | None = None) -> int:
    """Return the input tokens of a Messages request body: system, messages, tools, tool_choice.

    ``notes`` are those of the request's messages, where each message's count is kept. Never
    raises on malformed parts; they count as zero or by their strings.
    """
    if not isinstance(request, dict):
        return 0
    messages = _as_list(request.get("messages"))
    if notes is None:
        counted = sum(_message_tokens(message) for message in messages)
    else:
        counted = sum(noted(note, "tokens", _message_tokens, message)
                      for message, note in zip(messages, notes, strict=True))
    return (
        _value_tokens(request.get("system"), 0)
        + counted
        + sum(_tool_tokens(tool) for tool in _as_list(request.get("tools")))
        + _json_tokens(request.get("tool_choice"))
    )


def estimate_request_tokens(request: dict[str, Any]) -> int:
    """Return the token count used for routing; ``count_tokens`` is fast enough to be it."""
    return count_tokens(request)


def _get_encoding() -> bpe_openai.Encoding:
    # Imported on first use, not with the app: importing bpe_openai reads all of its vocabularies
    # (~0.5 s, ~70 MB), and gunicorn workers import the app long before anything is counted.
    global _encoding
    if _encoding is None:
        with _encoding_lock:
            if _encoding is None:
                _encoding = _load_encoding()
    return _encoding


def _load_encoding() -> bpe_openai.Encoding:
    with warnings.catch_warnings():
        # bpe_openai 0.1.4 reads its data with importlib.resources.open_binary, deprecated since 3.11.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"bpe_openai\.")
        import bpe_openai

        return bpe_openai.get_encoding(ENCODING_NAME)


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _json_tokens(value: object) -> int:
    if value is None:
        return 0
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):  # odd keys, cycles, absurd nesting
        return 0
    return count_text(text)


def _message_tokens(message: object) -> int:
    if not isinstance(message, dict):
        return 0
    return MESSAGE_OVERHEAD + _value_tokens(message.get("content"), 0)


def _tool_tokens(tool: object) -> int:
    if not isinstance(tool, dict):
        return 0
    if tool.get("type") not in (None, "custom") and "input_schema" not in tool:
        return SERVER_TOOL_TOKENS
    return (
        TOOL_OVERHEAD
        + count_text(tool.get("name", ""))
        + count_text(tool.get("description", ""))
        + _json_tokens(tool.get("input_schema"))
    )


def _value_tokens(value: object, depth: int) -> int:
    """Count a content value: a string, a list of blocks, or one block dispatched by its type."""
    if depth > _MAX_DEPTH:
        return 0
    if isinstance(value, str):
        return count_text(value)
    if isinstance(value, list):
        return sum(_value_tokens(item, depth + 1) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        handler = _BLOCKS.get(kind, _unknown_block) if isinstance(kind, str) else _unknown_block
        return handler(value, depth + 1)
    return 0


def _text_block(block: dict[str, Any], depth: int) -> int:
    return count_text(block.get("text", ""))


def _thinking_block(block: dict[str, Any], depth: int) -> int:
    return count_text(block.get("thinking", ""))


def _redacted_thinking_block(block: dict[str, Any], depth: int) -> int:
    data = block.get("data")
    return len(data) // REDACTED_CHARS_PER_TOKEN if isinstance(data, str) else 0


def _tool_use_block(block: dict[str, Any], depth: int) -> int:
    return count_text(block.get("name", "")) + _json_tokens(block.get("input"))


def _tool_result_block(block: dict[str, Any], depth: int) -> int:
    return _value_tokens(block.get("content"), depth)


def _tool_reference_block(block: dict[str, Any], depth: int) -> int:
    return count_text(block.get("tool_name", ""))


def _unknown_block(block: dict[str, Any], depth: int) -> int:
    return sum(_value_tokens(value, depth) for key, value in block.items() if key not in _OPAQUE_KEYS)


def _image_block(block: dict[str, Any], depth: int) -> int:
    source = block.get("source")
    size = None
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        size = _base64_image_size(source["data"])
    return IMAGE_TOKENS if size is None else _image_tokens_for_size(*size)


def _image_tokens_for_size(width: int, height: int) -> int:
    # Anthropic downscales before counting: long edge to 1568 px, area to ~1.15 MP.
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height), math.sqrt(IMAGE_MAX_PIXELS / (width * height)))
    pixels = max(1, int(width * scale)) * max(1, int(height * scale))
    return min(IMAGE_TOKENS, max(1, round(pixels / IMAGE_PIXELS_PER_TOKEN)))


def _document_block(block: dict[str, Any], depth: int) -> int:
    framing = count_text(block.get("title", "")) + count_text(block.get("context", ""))
    source = block.get("source")
    if not isinstance(source, dict):
        return framing + UNKNOWN_DOCUMENT_TOKENS
    kind = source.get("type")
    if kind == "text":
        return framing + count_text(source.get("data", ""))
    if kind == "content":
        return framing + _value_tokens(source.get("content"), depth)
    if kind == "base64" and isinstance(source.get("data"), str):
        return framing + _pdf_tokens(source["data"])
    return framing + UNKNOWN_DOCUMENT_TOKENS


def _pdf_tokens(data: str) -> int:
    raw = _decode_base64_prefix(data, len(data))
    pages = len(_PDF_PAGE.findall(raw)) or math.ceil(len(raw) / PDF_BYTES_PER_PAGE)
    return max(1, pages) * PDF_PAGE_TOKENS


_BLOCKS: dict[str, Callable[[dict[str, Any], int], int]] = {
    "text": _text_block,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_thinking_block,
    "tool_use": _tool_use_block,
    "server_tool_use": _tool_use_block,
    "mcp_tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "mcp_tool_result": _tool_result_block,
    "tool_reference": _tool_reference_block,
    "image": _image_block,
    "document": _document_block,
}


# -- image headers ---------------------------------------------------------------------------


def _decode_base64_prefix(data: str, chars: int) -> bytes:
    prefix = data[:chars]
    prefix = prefix[: len(prefix) - len(prefix) % 4]
    try:
        return base64.b64decode(prefix)
    except ValueError:  # binascii.Error, or non-ASCII text
        return b""


def _base64_image_size(data: str) -> tuple[int, int] | None:
    chars = _IMAGE_HEAD_CHARS
    while True:
        head = _decode_base64_prefix(data, chars)
        size = _image_size(head)
        # Only JPEG puts its dimensions after variable-length segments (EXIF, ICC profiles),
        # so only JPEG is worth decoding further.
        if size is not None or not head.startswith(_JPEG_SOI) or chars >= len(data):
            return size
        chars *= 16


def _image_size(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_size(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_size(head)
    if head.startswith(_JPEG_SOI):
        return _jpeg_size(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _png_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return _positive(*struct.unpack(">II", head[16:24]))


def _gif_size(head: bytes) -> tuple[int, int] | None:
    return _positive(*struct.unpack("<HH", head[6:10])) if len(head) >= 10 else None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
            return _positive(width, height)
        elif marker in _JPEG_STANDALONE:
            offset += 2
        else:
            offset += 2 + int.from_bytes(head[offset + 2 : offset + 4], "big")
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        return _positive(width, int.from_bytes(head[27:30], "little") + 1)
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 " and len(head) >= 30:
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        return _positive(width, int.from_bytes(head[28:30], "little") & 0x3FFF)
    return None


def estimate_tokens(request: dict[str, Any], parts: Sequence[bytes] | None = None,
                    notes: Sequence[Notes] | None = None) -> int:
    """A cheap upper-side estimate of the prompt's tokens: serialised bytes / 3.5.

    Routing runs on every request, so it does not load the BPE tokenizer (about 100 MB per
    worker); JSON of English text and code runs 3.5-4 bytes per token. An image costs its
    fixed token count, not its base64 bytes (a 1 MB screenshot is ~1 600 tokens, not 300 000).
    ``parts`` and ``notes`` (the messages' bytes and notes) spare serialising the history again
    and walking it for images: the result is the same.
    """
    messages = request.get("messages") or []
    if parts is None or notes is None:
        image_bytes, images = _base64_images(messages)
        return int((len(orjson.dumps(request)) - image_bytes) / 3.5) + images * IMAGE_TOKENS
    # orjson writes the list as "[" + the parts joined by "," + "]".
    size = len(orjson.dumps({**request, "messages": []})) + sum(map(len, parts)) + max(len(parts) - 1, 0)
    image_bytes = images = 0
    for message, note in zip(messages, notes, strict=True):
        more_bytes, more = noted(note, "base64_images", _message_images, message)
        image_bytes, images = image_bytes + more_bytes, images + more
    return int((size - image_bytes) / 3.5) + images * IMAGE_TOKENS


def _message_images(message: Any) -> tuple[int, int]:
    return _base64_images([message])


def _base64_images(blocks: list[Any]) -> tuple[int, int]:
    """(base64 bytes, count) of the images in messages or blocks, tool results included."""
    size = count = 0
    for item in blocks:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if item.get("type") == "image" and isinstance(source, dict) and isinstance(source.get("data"), str):
            size, count = size + len(source["data"]), count + 1
        inner = item.get("content")
        if isinstance(inner, list):
            more_size, more_count = _base64_images(inner)
            size, count = size + more_size, count + more_count
    return size, count
