"""Upstream errors from chat-completions servers, in Anthropic's terms.

Context overflow is recognised in every wording we know of and rephrased as Anthropic's
``prompt is too long: N tokens > M maximum`` (400) — the only form on which Claude Code
compacts the conversation. Everything else is typed by its HTTP status.
"""

from __future__ import annotations

import re
from typing import Any

_STATUS_TYPES = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    402: (402, "billing_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    408: (504, "timeout_error"),
    413: (413, "request_too_large"),
    422: (400, "invalid_request_error"),
    429: (429, "rate_limit_error"),
    500: (500, "api_error"),
    502: (500, "api_error"),
    503: (503, "overloaded_error"),
    504: (504, "timeout_error"),
    529: (529, "overloaded_error"),
}
OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error", "string_above_max_length"})
OVERFLOW_PHRASES = re.compile(
    r"context length|context window|context size|context_length_exceeded|prompt is too long"
    r"|input is too long|too large for model|exceeds the maximum number of tokens"
    r"|input token count|maximum number of tokens allowed",
    re.IGNORECASE,
)
# (pattern, which number it captures): the first match of each kind wins.
_LIMIT_PATTERNS = [
    r"prompt is too long: \d+ tokens > (\d+)",
    r"maximum context length is (\d+)",  # OpenAI, Azure, DeepSeek, vLLM, OpenRouter
    r"configured limit of (\d+)",  # OpenAI Responses-era wording
    r"(\d+) maximum context length",  # Mistral
    r"maximum number of tokens allowed \((\d+)\)",  # Gemini's OpenAI-compatible endpoint
    r"context (?:length|size|window) of (?:only )?(\d+)",  # LM Studio, llama.cpp
]
_COUNT_PATTERNS = [
    r"prompt is too long: (\d+) tokens",
    r"resulted in (\d+) tokens",  # OpenAI
    r"you requested (?:about )?(\d+) tokens",  # vLLM, DeepSeek, OpenRouter
    r"request has (\d+) input tokens",  # vLLM >= 0.6
    r"prompt contains (\d+) tokens",  # Mistral
    r"input token count \((\d+)\)",  # Gemini
    r"keep the first (\d+) tokens",  # LM Studio
]
_STATUS_CODES = frozenset(range(400, 600))


class UpstreamFormatError(Exception):
    """An upstream answer that is not a usable completion, already typed for the client."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def upstream_error(status: int, body: Any, *, context_window: int | None = None) -> tuple[int, str, str]:
    """Map an upstream error to ``(status, anthropic error type, message)``.

    ``body`` is the parsed JSON body, text, bytes or None. A context overflow from any server
    becomes ``(400, "invalid_request_error", "prompt is too long: N tokens > M maximum")``;
    ``context_window`` is the fallback for M when the upstream does not say it.
    """
    error = _error_object(body)
    message = _message(error) or f"upstream returned HTTP {status}"
    if status not in (401, 403, 429) and _is_overflow(error, message):
        return 400, "invalid_request_error", overflow_message(error, message, context_window)
    if error.get("code") == "insufficient_quota":
        # OpenAI answers 429 for an exhausted quota; retrying cannot help, so it is billing.
        return 402, "billing_error", message
    default = (500, "api_error") if status >= 500 else (400, "invalid_request_error")
    mapped_status, error_type = _STATUS_TYPES.get(status, default)
    return mapped_status, error_type, message


def status_of(error: Any, default: int = 500) -> int:
    """The HTTP status an embedded error object names (OpenRouter puts it in ``code``)."""
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return code if isinstance(code, int) and code in _STATUS_CODES else default


def overflow_message(error: dict[str, Any], message: str, context_window: int | None = None) -> str:
    """Anthropic's overflow wording with the best numbers the upstream gave."""
    limit = _first_int(_LIMIT_PATTERNS, message) or _int(error.get("n_ctx")) or context_window
    count = _first_int(_COUNT_PATTERNS, message) or _int(error.get("n_prompt_tokens"))
    limit = limit or (count - 1 if count else 0)
    count = count or limit + 1
    return f"prompt is too long: {count} tokens > {limit} maximum"


def _error_object(body: Any) -> dict[str, Any]:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, dict):
        return {"message": body.strip()[:2000]} if isinstance(body, str) and body.strip() else {}
    error = body.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error, **{k: v for k, v in body.items() if k != "error"}}
    return body


def _message(error: dict[str, Any]) -> str:
    for candidate in (error.get("message"), error.get("detail"), error.get("msg")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
        if isinstance(candidate, (dict, list)):
            return str(candidate)
    return ""


def _is_overflow(error: dict[str, Any], message: str) -> bool:
    codes = {str(error.get("code")), str(error.get("type"))}
    return bool(codes & OVERFLOW_CODES) or bool(OVERFLOW_PHRASES.search(message))


def _first_int(patterns: list[str], text: str) -> int | None:
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return int(match.group(1))
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
