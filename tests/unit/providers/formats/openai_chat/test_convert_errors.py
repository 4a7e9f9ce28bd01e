"""Upstream errors from chat-completions servers, mapped to Anthropic's error types."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.openai_chat.convert import UpstreamFormatError, upstream_error

OVERFLOWS = [
    pytest.param(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130512 tokens (130000 in the messages, 512 in the functions). Please reduce "
                "the length of the messages or functions.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        "prompt is too long: 130512 tokens > 128000 maximum",
        id="openai",
    ),
    pytest.param(
        400,
        {
            "error": {
                "message": "Input tokens exceed the configured limit of 272000 tokens. Your messages "
                "resulted in 300001 tokens. Please reduce the length of the messages.",
                "code": "context_length_exceeded",
            }
        },
        "prompt is too long: 300001 tokens > 272000 maximum",
        id="openai-gpt5",
    ),
    pytest.param(
        400,
        {
            "error": {
                "message": "This endpoint's maximum context length is 163840 tokens. However, you requested "
                "about 201234 tokens (193042 of text input, 8192 in the output). Please reduce the length "
                'of either one, or use the "middle-out" transform to compress your prompt automatically.',
                "code": 400,
            }
        },
        "prompt is too long: 201234 tokens > 163840 maximum",
        id="openrouter",
    ),
    pytest.param(
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 32768 tokens. However, you "
            "requested 33000 tokens (30000 in the messages, 3000 in the completion). Please reduce the length "
            "of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        "prompt is too long: 33000 tokens > 32768 maximum",
        id="vllm",
    ),
    pytest.param(
        400,
        {
            "error": {
                "message": "'max_tokens' or 'max_completion_tokens' is too large: 8192. This model's maximum "
                "context length is 32768 tokens and your request has 30000 input tokens (8192 > 32768 - "
                "30000).",
                "type": "BadRequestError",
                "code": 400,
            }
        },
        "prompt is too long: 30000 tokens > 32768 maximum",
        id="vllm-new",
    ),
    pytest.param(
        400,
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 9000,
                "n_ctx": 8192,
            }
        },
        "prompt is too long: 9000 tokens > 8192 maximum",
        id="llama.cpp",
    ),
    pytest.param(
        400,
        {
            "error": {
                "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 "
                "maximum context length",
                "type": "invalid_request_error",
            }
        },
        "prompt is too long: 40000 tokens > 32768 maximum",
        id="mistral",
    ),
    pytest.param(
        400,
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        },
        "prompt is too long: 1200000 tokens > 1048576 maximum",
        id="gemini",
    ),
    pytest.param(
        400,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
        },
        "prompt is too long: 210000 tokens > 200000 maximum",
        id="anthropic-wording",
    ),
    pytest.param(
        500,
        "Trying to keep the first 9000 tokens when context the overflows. However, the model is loaded with "
        "context length of only 8192 tokens, which is not enough.",
        "prompt is too long: 9000 tokens > 8192 maximum",
        id="lm-studio-text",
    ),
    pytest.param(
        400,
        {
            "error": {
                "message": "Please reduce the length of the messages or completion.",
                "code": "context_length_exceeded",
            }
        },
        "prompt is too long: 128001 tokens > 128000 maximum",
        id="no-numbers-falls-back-to-context-window",
    ),
]


@pytest.mark.parametrize(("status", "body", "message"), OVERFLOWS)
def test_context_overflow_becomes_prompt_is_too_long(status: int, body: Any, message: str) -> None:
    assert upstream_error(status, body, context_window=128_000) == (400, "invalid_request_error", message)


def test_overflow_without_any_number_still_uses_the_phrase() -> None:
    _, _, message = upstream_error(400, {"error": {"code": "context_length_exceeded", "message": "too long"}})
    assert message.startswith("prompt is too long: ")
    assert message.endswith(" maximum")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, (400, "invalid_request_error")),
        (401, (401, "authentication_error")),
        (403, (403, "permission_error")),
        (404, (404, "not_found_error")),
        (413, (413, "request_too_large")),
        (422, (400, "invalid_request_error")),
        (429, (429, "rate_limit_error")),
        (500, (500, "api_error")),
        (502, (500, "api_error")),
        (503, (503, "overloaded_error")),
        (504, (504, "timeout_error")),
        (529, (529, "overloaded_error")),
        (418, (400, "invalid_request_error")),
        (507, (500, "api_error")),
    ],
)
def test_status_mapping(status: int, expected: tuple[int, str]) -> None:
    assert upstream_error(status, {"error": {"message": "boom"}}) == (*expected, "boom")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "Incorrect API key provided"}}, "Incorrect API key provided"),
        ({"error": "model not found"}, "model not found"),
        ({"error": {"message": {"detail": "nested"}}}, "{'detail': 'nested'}"),
        ({"detail": "Not Found"}, "Not Found"),
        (b"Bad Gateway", "Bad Gateway"),
        ("", "upstream returned HTTP 401"),
        (None, "upstream returned HTTP 401"),
    ],
)
def test_message_taken_from_the_body(body: Any, message: str) -> None:
    assert upstream_error(401, body) == (401, "authentication_error", message)


def test_rate_limits_on_tokens_per_minute_are_not_overflows() -> None:
    body = {
        "error": {
            "message": "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, "
            "Requested 50000. The input or output tokens must be reduced.",
            "code": "rate_limit_exceeded",
        }
    }
    assert upstream_error(429, body)[:2] == (429, "rate_limit_error")


def test_exhausted_quota_is_billing_not_rate_limit() -> None:
    body = {"error": {"message": "You exceeded your current quota.", "code": "insufficient_quota"}}
    assert upstream_error(429, body) == (402, "billing_error", "You exceeded your current quota.")


def test_format_error_carries_its_typing() -> None:
    error = UpstreamFormatError(429, "rate_limit_error", "slow down")
    assert (error.status, error.error_type, error.message, str(error)) == (
        429,
        "rate_limit_error",
        "slow down",
        "slow down",
    )
