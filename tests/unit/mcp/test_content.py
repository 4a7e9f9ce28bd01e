"""CallToolResult → Anthropic tool_result content."""

from __future__ import annotations

from app.mcp.content import map_result


def test_text_and_image_become_text_and_image_blocks() -> None:
    mapped = map_result({"content": [{"type": "text", "text": "a"},
                                     {"type": "image", "mimeType": "image/png", "data": "iVBO"}]})
    assert mapped.blocks == [{"type": "text", "text": "a"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]
    assert mapped.is_error is False


def test_is_error_is_kept_and_its_text_is_the_message() -> None:
    mapped = map_result({"content": [{"type": "text", "text": "no such file"}], "isError": True})
    assert mapped.is_error is True
    assert mapped.text() == "no such file"


def test_structured_content_is_json_text_only_when_no_text_is_given() -> None:
    assert map_result({"content": [], "structuredContent": {"n": 1}}).blocks == [
        {"type": "text", "text": '{\n  "n": 1\n}'}]
    assert map_result({"content": [{"type": "text", "text": "one"}], "structuredContent": {"n": 1}}).blocks == [
        {"type": "text", "text": "one"}]


def test_resources_links_audio_and_unknown_types() -> None:
    mapped = map_result({"content": [
        {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "body"}},
        {"type": "resource", "resource": {"uri": "file:///p.png", "mimeType": "image/png", "blob": "AAAA"}},
        {"type": "resource", "resource": {"uri": "file:///x.bin", "mimeType": "application/zip", "blob": "AAAAAAAA"}},
        {"type": "resource_link", "uri": "file:///b.txt", "name": "b"},
        {"type": "audio", "mimeType": "audio/wav", "data": "AAAA"},
        {"type": "image", "mimeType": "image/tiff", "data": "AAAA"},
        {"type": "hologram"},
    ]})
    assert mapped.blocks == [
        {"type": "text", "text": "[resource file:///a.txt]\nbody"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "text", "text": "[binary resource file:///x.bin (application/zip, about 6 bytes) left out]"},
        {"type": "text", "text": "[resource link: file:///b.txt (b)]"},
        {"type": "text", "text": "[audio (audio/wav) left out: it cannot be shown here]"},
        {"type": "text", "text": "[image of type 'image/tiff' left out: the model accepts image/gif, image/jpeg, "
                                 "image/png, image/webp]"},
        {"type": "text", "text": "[content of type 'hologram' left out]"},
    ]


def test_an_empty_result_says_so() -> None:
    assert map_result({"content": []}).blocks == [{"type": "text", "text": "(the tool returned no content)"}]
