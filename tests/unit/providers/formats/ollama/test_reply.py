"""Ollama errors in Anthropic terms (missing model, context overflow in Anthropic's wording) and usage."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.ollama.reply import error_text, ollama_usage, upstream_error


@pytest.mark.parametrize(("status", "body", "window", "expected"), [
    (500, {"error": "input length (9000 tokens) exceeds the model's maximum context length (8192 tokens)"}, None,
     (400, "invalid_request_error", "prompt is too long: 9000 tokens > 8192 maximum")),
    (500, {"error": "prompt too long; exceeded max context length by 100 tokens"}, 4096,
     (400, "invalid_request_error", "prompt is too long: 4196 tokens > 4096 maximum")),
    (500, {"error": "context window exceeded"}, 4096,
     (400, "invalid_request_error", "prompt is too long: 4097 tokens > 4096 maximum")),
    (404, {"error": "model \"qwen9\" not found, try pulling it first"}, None,
     (404, "not_found_error", "model \"qwen9\" not found, try pulling it first")),
    (400, {"error": {"message": "model 'x' not found"}}, None, (404, "not_found_error", "model 'x' not found")),
    (429, {"error": "context length busy"}, None, (429, "rate_limit_error", "context length busy")),
    (400, b'{"error":"x"}', None, (400, "invalid_request_error", '{"error":"x"}')),
    (502, None, None, (500, "api_error", "Ollama returned HTTP 502")),
    (503, "  busy  ", None, (503, "overloaded_error", "busy")),
])
def test_upstream_error(status: int, body: Any, window: int | None, expected: tuple[int, str, str]) -> None:
    assert upstream_error(status, body, context_window=window) == expected


def test_error_text() -> None:
    assert error_text({"error": " gone "}) == "gone"
    assert error_text({"error": {"message": "inner"}}) == "inner"
    assert error_text({"error": 5}) == ""
    assert error_text(b"x" * 3000) == "x" * 2000
    assert error_text([1]) == ""


def test_usage_keeps_only_real_counts() -> None:
    assert ollama_usage({"prompt_eval_count": 3, "eval_count": 7}) == {"input_tokens": 3, "output_tokens": 7}
    assert ollama_usage({"prompt_eval_count": 3, "eval_count": True}) == {"input_tokens": 3}
    assert ollama_usage({"prompt_eval_count": -1, "eval_count": "7"}) == {}
