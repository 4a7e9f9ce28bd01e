"""The routing estimate of a prompt's size: text by bytes, images by their fixed cost."""

from __future__ import annotations

import base64
import uuid

from app.anthropic.encoded import Encoded
from app.anthropic.tokens import IMAGE_TOKENS, estimate_tokens


def image(size: int) -> dict[str, object]:
    data = base64.b64encode(b"\x89PNG" + b"\0" * size).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def test_text_is_estimated_from_its_bytes() -> None:
    request = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x" * 35_000}]}
    assert 10_000 <= estimate_tokens(request) <= 10_050


def test_a_one_megabyte_screenshot_costs_its_image_tokens_not_its_bytes() -> None:
    text_only = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is on this screen?"}]}]}
    with_image = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is on this screen?"}, image(750_000)]}]}
    assert estimate_tokens(with_image) - estimate_tokens(text_only) in range(IMAGE_TOKENS, IMAGE_TOKENS + 40)


def test_images_inside_tool_results_count_the_same_way() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [image(300_000), image(300_000)]}
    request = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [result]}]}
    assert estimate_tokens(request) < 2 * IMAGE_TOKENS + 100


def long_conversation(tag: str, turns: int = 6) -> dict[str, object]:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": [
        {"type": "text", "text": f"{tag} turn {i} " + "words " * 50}, *([image(5_000)] if i == 2 else [])]}
        for i in range(turns)]
    return {"model": "m", "max_tokens": 1, "system": "s", "messages": messages, "tools": []}


def test_the_estimate_from_the_messages_bytes_and_notes_is_the_full_estimate() -> None:
    request = long_conversation(uuid.uuid4().hex)
    given = Encoded(request["messages"])  # type: ignore[arg-type]

    assert estimate_tokens(request, given.parts, given.notes) == estimate_tokens(request)
    assert estimate_tokens(request, given.parts, given.notes) == estimate_tokens(request)  # from the notes
    empty = {**request, "messages": []}
    assert estimate_tokens(empty, [], []) == estimate_tokens(empty)


def test_an_edited_message_changes_the_estimate_a_resent_one_does_not() -> None:
    tag = uuid.uuid4().hex
    request = long_conversation(tag)
    first = Encoded(request["messages"])  # type: ignore[arg-type]
    before = estimate_tokens(request, first.parts, first.notes)

    edited = long_conversation(tag)
    edited["messages"][1]["content"][0]["text"] += "more " * 100  # type: ignore[index]
    again = Encoded(edited["messages"])  # type: ignore[arg-type]

    assert again.notes[0] is first.notes[0]
    assert estimate_tokens(edited, again.parts, again.notes) == estimate_tokens(edited) > before
