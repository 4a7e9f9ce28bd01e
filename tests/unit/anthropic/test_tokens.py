"""Offline token counting: exact small cases, image headers, and every recorded Claude Code request."""

from __future__ import annotations

import base64
import importlib
import json
import struct
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.anthropic import tokens
from app.anthropic.encoded import Encoded
from app.anthropic.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    PDF_PAGE_TOKENS,
    SERVER_TOOL_TOKENS,
    TOOL_OVERHEAD,
    UNKNOWN_DOCUMENT_TOKENS,
    count_text,
    count_tokens,
    estimate_request_tokens,
)

FIXTURES_DIR = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "claude-code"
REFERENCE_TOLERANCE = 0.15


@pytest.fixture(scope="module")
def bpe_openai() -> ModuleType:
    """The tokenizer package itself, for an independent reference count."""
    with warnings.catch_warnings():
        # Its import warns (importlib.resources.open_binary); app.anthropic.tokens silences the same warning.
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("bpe_openai")


# -- builders --------------------------------------------------------------------------------


def make_request(*content: Any, **fields: Any) -> dict[str, Any]:
    """A request with one user message per content value."""
    messages = [{"role": "user", "content": item} for item in content]
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **fields}


def make_image_block(data: bytes, media_type: str) -> dict[str, Any]:
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
    return {"type": "image", "source": source}


def make_png(width: int, height: int) -> bytes:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


def make_gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x00" * 64


def make_jpeg(width: int, height: int, exif_bytes: int = 0) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    app1 = b"\xff\xe1" + struct.pack(">H", exif_bytes + 2) + b"\x00" * exif_bytes if exif_bytes else b""
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00" * 3
    return b"\xff\xd8" + app0 + app1 + sof0 + b"\xff\xd9"


def make_webp(width: int, height: int, flavour: str) -> bytes:
    if flavour == "VP8X":
        body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif flavour == "VP8L":
        body = b"\x2f" + ((width - 1) | (height - 1) << 14).to_bytes(4, "little")
    else:
        body = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
    chunk = flavour.encode() + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def make_pdf(pages: int) -> bytes:
    page_objects = b"".join(b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" % n for n in range(pages))
    return b"%%PDF-1.4\n1 0 obj << /Type /Pages /Count %d >> endobj\n" % pages + page_objects


# -- text, messages, system ------------------------------------------------------------------


def test_count_text_is_cl100k() -> None:
    assert count_text("hello world") == 2
    assert count_text("") == 0


def test_plain_string_message_counts_text_plus_role_overhead() -> None:
    assert count_tokens(make_request("hello world")) == 2 + MESSAGE_OVERHEAD


def test_system_string_and_text_blocks_count_the_same() -> None:
    text = "You are a careful assistant."
    as_string = count_tokens({"system": text, "messages": []})
    as_blocks = count_tokens({"system": [{"type": "text", "text": text, "cache_control": {"type": "x"}}]})
    assert as_string == as_blocks == count_text(text)


def test_special_token_text_counts_as_plain_text() -> None:
    text = "user wrote <|endoftext|> and <|fim_prefix|> literally"
    assert count_text(text) > count_text("<|endoftext|>") > 1
    assert count_tokens(make_request(text, system=text)) == 2 * count_text(text) + MESSAGE_OVERHEAD


def test_estimate_request_tokens_agrees_with_count_tokens() -> None:
    request = make_request("hello world", system="be brief")
    assert estimate_request_tokens(request) == count_tokens(request)


def test_very_long_text_is_counted_in_chunks() -> None:
    assert count_text("ab " * 200_000) == pytest.approx(count_text("ab " * 1000) * 200, rel=0.01)


# -- content blocks --------------------------------------------------------------------------


def test_tool_use_counts_name_and_compact_json_input() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"file_path": "a.txt"}}
    expected = count_text("Write") + count_text('{"file_path":"a.txt"}') + MESSAGE_OVERHEAD
    assert count_tokens(make_request([block])) == expected


def test_tool_result_counts_string_content() -> None:
    block = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "File created", "is_error": False}
    assert count_tokens(make_request([block])) == count_text("File created") + MESSAGE_OVERHEAD


def test_tool_result_counts_nested_text_and_images() -> None:
    nested = [{"type": "text", "text": "screenshot"}, make_image_block(make_png(300, 250), "image/png")]
    block = {"type": "tool_result", "tool_use_id": "toolu_1", "content": nested}
    expected = count_text("screenshot") + round(300 * 250 / 750) + MESSAGE_OVERHEAD
    assert count_tokens(make_request([block])) == expected


def test_thinking_counts_its_text_and_redacted_thinking_its_data_length() -> None:
    thinking = {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl" * 50}
    redacted = {"type": "redacted_thinking", "data": "x" * 400}
    assert count_tokens(make_request([thinking])) == count_text("Let me think.") + MESSAGE_OVERHEAD
    assert count_tokens(make_request([redacted])) == 100 + MESSAGE_OVERHEAD


def test_tool_reference_counts_the_tool_name() -> None:
    block = {"type": "tool_reference", "tool_name": "WebSearch"}
    assert count_tokens(make_request([block])) == count_text("WebSearch") + MESSAGE_OVERHEAD


def test_unknown_block_counts_its_strings_and_never_raises() -> None:
    block = {"type": "hologram", "caption": "hello world", "extra": {"note": "hello world"}, "depth": 3}
    assert count_tokens(make_request([block])) == 2 * count_text("hello world") + MESSAGE_OVERHEAD


@pytest.mark.parametrize(
    "request_body",
    [
        {"messages": "not a list"},
        {"messages": [None, 3, {"role": "user"}, {"role": "user", "content": None}]},
        {"messages": [{"role": "user", "content": [{"type": ["odd"]}, 7, None, {"no": "type"}]}]},
        {"messages": [], "tools": [None, {"name": 5}], "tool_choice": {"type": "auto"}, "system": 12},
        {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
    ],
)
def test_malformed_parts_do_not_raise(request_body: dict[str, Any]) -> None:
    assert count_tokens(request_body) >= 0


def test_pathologically_deep_nesting_does_not_raise() -> None:
    block: dict[str, Any] = {"type": "text", "text": "bottom"}
    for _ in range(5000):
        block = {"type": "wrapper", "inner": [block]}
    assert count_tokens(make_request([block])) == MESSAGE_OVERHEAD


def test_non_dict_request_counts_zero() -> None:
    assert count_tokens([]) == 0  # type: ignore[arg-type]


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (make_png(200, 150), "image/png"),
        (make_gif(200, 150), "image/gif"),
        (make_jpeg(200, 150), "image/jpeg"),
        (make_webp(200, 150, "VP8X"), "image/webp"),
        (make_webp(200, 150, "VP8L"), "image/webp"),
        (make_webp(200, 150, "VP8 "), "image/webp"),
    ],
    ids=["png", "gif", "jpeg", "webp-vp8x", "webp-vp8l", "webp-vp8"],
)
def test_image_header_gives_area_over_750(data: bytes, media_type: str) -> None:
    request = make_request([make_image_block(data, media_type)])
    assert count_tokens(request) == round(200 * 150 / 750) + MESSAGE_OVERHEAD


def test_jpeg_dimensions_found_after_a_large_exif_segment() -> None:
    request = make_request([make_image_block(make_jpeg(640, 480, exif_bytes=20_000), "image/jpeg")])
    assert count_tokens(request) == round(640 * 480 / 750) + MESSAGE_OVERHEAD


def test_long_edge_over_1568_is_downscaled_first() -> None:
    request = make_request([make_image_block(make_png(3136, 200), "image/png")])
    assert count_tokens(request) == round(1568 * 100 / 750) + MESSAGE_OVERHEAD


@pytest.mark.parametrize("size", [(8000, 6000), (4000, 4000), (1500, 1500)])
def test_huge_image_is_capped_near_1600(size: tuple[int, int]) -> None:
    image_tokens = count_tokens(make_request([make_image_block(make_png(*size), "image/png")]))
    assert 1500 <= image_tokens - MESSAGE_OVERHEAD <= IMAGE_TOKENS


@pytest.mark.parametrize(
    "source",
    [
        {"type": "url", "url": "https://example.com/cat.png"},
        {"type": "file", "file_id": "file_123"},
        {"type": "base64", "media_type": "image/png", "data": base64.b64encode(b"not an image").decode()},
        {"type": "base64", "media_type": "image/png", "data": "%%% not base64 \u00e9"},
    ],
    ids=["url", "file", "not-an-image", "not-base64"],
)
def test_unreadable_image_costs_the_fallback(source: dict[str, Any]) -> None:
    request = make_request([{"type": "image", "source": source}])
    assert count_tokens(request) == IMAGE_TOKENS + MESSAGE_OVERHEAD


# -- documents -------------------------------------------------------------------------------


def test_base64_pdf_costs_per_page() -> None:
    data = base64.b64encode(make_pdf(3)).decode()
    request = make_request([{"type": "document", "source": {"type": "base64", "data": data}}])
    assert count_tokens(request) == 3 * PDF_PAGE_TOKENS + MESSAGE_OVERHEAD


def test_text_document_counts_its_text_and_title() -> None:
    source = {"type": "text", "media_type": "text/plain", "data": "The grass is green."}
    request = make_request([{"type": "document", "source": source, "title": "Facts"}])
    assert count_tokens(request) == count_text("The grass is green.") + count_text("Facts") + MESSAGE_OVERHEAD


def test_url_document_costs_a_fixed_estimate() -> None:
    request = make_request([{"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}])
    assert count_tokens(request) == UNKNOWN_DOCUMENT_TOKENS + MESSAGE_OVERHEAD


# -- tools -----------------------------------------------------------------------------------


def test_custom_tool_counts_name_description_and_compact_schema() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    tool = {"name": "Read", "description": "Read a file", "input_schema": schema}
    expected = TOOL_OVERHEAD + count_text("Read") + count_text("Read a file")
    expected += count_text(json.dumps(schema, separators=(",", ":")))
    assert count_tokens({"messages": [], "tools": [tool]}) == expected


def test_server_tool_costs_a_fixed_amount() -> None:
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    assert count_tokens({"messages": [], "tools": [tool]}) == SERVER_TOOL_TOKENS


def test_tool_choice_is_counted() -> None:
    request = {"messages": [], "tool_choice": {"type": "tool", "name": "Read"}}
    assert count_tokens(request) == count_text('{"type":"tool","name":"Read"}')


# -- the encoding is loaded once -------------------------------------------------------------


def test_encoding_loads_once_under_concurrent_first_use(
    monkeypatch: pytest.MonkeyPatch, bpe_openai: ModuleType
) -> None:
    real_get_encoding = bpe_openai.get_encoding
    loads: list[str] = []

    def slow_get_encoding(name: str) -> Any:
        loads.append(name)
        time.sleep(0.05)  # widen the window in which a second thread could also load
        return real_get_encoding(name)

    monkeypatch.setattr(tokens, "_encoding", None)
    monkeypatch.setattr(bpe_openai, "get_encoding", slow_get_encoding)
    barrier = threading.Barrier(8)
    results: list[int] = []

    def first_use() -> None:
        barrier.wait()
        results.append(count_text("hello world"))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["cl100k_base"]
    assert results == [2] * 8


# -- recorded Claude Code requests against an independent reference --------------------------


def fixture_requests() -> list[Path]:
    # A missing folder still yields one case, so the run fails instead of skipping silently.
    return sorted(FIXTURES_DIR.glob("*-request*.json")) or [FIXTURES_DIR / "missing"]


def load_body(path: Path) -> dict[str, Any]:
    if not path.is_file():
        pytest.fail(f"Claude Code fixtures not found: expected *-request*.json files in {FIXTURES_DIR}")
    return json.loads(path.read_text(encoding="utf-8"))["body"]


def every_string(value: Any) -> Iterator[str]:
    """Every string leaf, skipping identifiers and markers that are not prompt text."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from every_string(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in {"type", "id", "tool_use_id", "role", "cache_control"}:
                yield from every_string(item)


def reference_count(body: dict[str, Any], encoding: Any) -> int:
    """cl100k over all prompt text joined, plus the tools list as plain json.dumps."""
    texts = [*every_string(body.get("system")), *every_string(body.get("messages"))]
    text = "\n".join(texts) + "\n" + json.dumps(body.get("tools", []))
    return len(encoding.encode_ordinary(text))


@pytest.mark.parametrize("path", fixture_requests(), ids=lambda path: path.name)
def test_recorded_request_is_within_15_percent_of_reference(path: Path, bpe_openai: ModuleType) -> None:
    body = load_body(path)
    ours, reference = count_tokens(body), reference_count(body, bpe_openai.get_encoding("cl100k_base"))
    assert abs(ours - reference) <= REFERENCE_TOLERANCE * reference, f"{path.name}: {ours} vs {reference}"


def test_with_the_messages_notes_each_message_is_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex
    history = [{"role": "user", "content": f"{tag} question"}, {"role": "assistant", "content": f"{tag} answer"}]
    request = {"system": "Be brief.", "messages": history}
    counted: list[object] = []
    real = tokens._message_tokens

    def counting(message: object) -> int:
        counted.append(message)
        return real(message)

    monkeypatch.setattr(tokens, "_message_tokens", counting)
    first = count_tokens(request, Encoded(history).notes)
    grown = [*history, {"role": "user", "content": f"{tag} follow-up"}]
    second = count_tokens({**request, "messages": grown}, Encoded(grown).notes)

    assert first == count_tokens(request)
    assert second == count_tokens({**request, "messages": grown})
    assert counted[:3] == [*history, grown[2]]  # the resent turns were not counted again
