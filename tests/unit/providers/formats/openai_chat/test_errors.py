"""Chat-completions errors in Anthropic terms: statuses, quota as billing, overflow in every known wording."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.openai_chat.errors import (
    UpstreamFormatError,
    overflow_message,
    status_of,
    upstream_error,
)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (400, {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages "
                                "resulted in 130001 tokens."}},
     (400, "invalid_request_error", "prompt is too long: 130001 tokens > 128000 maximum")),
    (400, {"error": {"message": "too big", "code": "context_length_exceeded"}},
     (400, "invalid_request_error", "prompt is too long: 8193 tokens > 8192 maximum")),
    (400, {"error": {"message": "request (9000 tokens) exceeds the available context size",
                     "type": "exceed_context_size_error", "n_ctx": 4096, "n_prompt_tokens": 9000}},
     (400, "invalid_request_error", "prompt is too long: 9000 tokens > 4096 maximum")),
    (400, {"message": "The input token count (300000) exceeds the maximum number of tokens allowed (1048576)."},
     (400, "invalid_request_error", "prompt is too long: 300000 tokens > 1048576 maximum")),
    (429, {"error": {"message": "context length busy"}}, (429, "rate_limit_error", "context length busy")),
    (429, {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}},
     (402, "billing_error", "You exceeded your current quota")),
    (401, {"error": "Invalid key"}, (401, "authentication_error", "Invalid key")),
    (408, "slow", (504, "timeout_error", "slow")),
    (422, {"detail": [{"loc": ["body"], "msg": "bad"}]},
     (400, "invalid_request_error", "[{'loc': ['body'], 'msg': 'bad'}]")),
    (502, None, (500, "api_error", "upstream returned HTTP 502")),
    (418, b"teapot", (400, "invalid_request_error", "teapot")),
    (599, {}, (500, "api_error", "upstream returned HTTP 599")),
])
def test_upstream_error(status: int, body: Any, expected: tuple[int, str, str]) -> None:
    assert upstream_error(status, body, context_window=8192) == expected


def test_overflow_message_takes_the_best_numbers_given() -> None:
    anthropic = "prompt is too long: 5 tokens > 4 maximum"
    assert overflow_message({}, anthropic) == anthropic
    assert overflow_message({}, "context window exceeded", None) == "prompt is too long: 1 tokens > 0 maximum"
    assert overflow_message({"n_prompt_tokens": 10}, "context window exceeded") == (
        "prompt is too long: 10 tokens > 9 maximum")


@pytest.mark.parametrize(("error", "status"), [
    ({"code": 429}, 429), ({"code": "402"}, 402), ({"code": 200}, 500), ({"code": "rate"}, 500), ("x", 500),
])
def test_status_of_an_embedded_error(error: Any, status: int) -> None:
    assert status_of(error) == status


def test_upstream_format_error_carries_its_typing() -> None:
    error = UpstreamFormatError(502, "api_error", "no choices")
    assert (error.status, error.error_type, error.message, str(error)) == (502, "api_error", "no choices",
                                                                           "no choices")
