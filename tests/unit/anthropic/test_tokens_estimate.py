"""The routing estimate of a prompt's size: text by bytes, images by their fixed cost."""

from __future__ import annotations

import base64

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
