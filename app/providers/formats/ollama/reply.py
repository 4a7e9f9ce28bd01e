"""Pieces of an Ollama answer shared by the JSON and the stream translation: usage and errors.

Ollama's errors are ``{"error": "<text>"}`` — with an HTTP status before anything was sent, or
as a stream line after. A missing model (``model "x" not found, try pulling it first``) is a
404 whatever the status said; a prompt longer than the context is rephrased as Anthropic's
``prompt is too long: N tokens > M maximum`` (400), the only form on which Claude Code compacts.
"""

from __future__ import annotations

import re
from typing import Any

from app.providers.formats.openai_chat.errors import overflow_message
from app.providers.formats.openai_chat.errors import upstream_error as chat_upstream_error

MODEL_NOT_FOUND = re.compile(r"\bmodel\b.*\bnot found\b|not found, try pulling", re.IGNORECASE)
OVERFLOW = re.compile(
    r"context length|context window|context size|prompt is too long|prompt too long"
    r"|input (?:length )?exceeds|exceeds the (?:maximum )?context",
    re.IGNORECASE,
)
# Ollama's own wordings: "input length (N tokens) exceeds the model's maximum context length
# (M tokens)" and the runner's "prompt too long; exceeded max context length by N tokens".
_COUNT = re.compile(r"\((\d+) tokens?\) exceeds", re.IGNORECASE)
_LIMIT = re.compile(r"context length \((\d+) tokens?\)", re.IGNORECASE)
_OVER_BY = re.compile(r"exceeded max context length by (\d+) tokens?", re.IGNORECASE)


def upstream_error(status: int, body: Any, *, context_window: int | None = None) -> tuple[int, str, str]:
    """An Ollama error as ``(status, anthropic error type, message)``.

    ``body`` is the parsed JSON body, text, bytes or None; ``context_window`` is the limit
    named in an overflow message when Ollama does not say it.
    """
    message = error_text(body) or f"Ollama returned HTTP {status}"
    if MODEL_NOT_FOUND.search(message):
        return 404, "not_found_error", message
    if status not in (401, 403, 429) and OVERFLOW.search(message):
        return 400, "invalid_request_error", _overflow(message, context_window)
    return chat_upstream_error(status, {"error": {"message": message}}, context_window=context_window)


def error_text(body: Any) -> str:
    """The text of an Ollama error body (``{"error": "..."}``), or of a plain-text body."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        return body.strip()[:2000]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error.strip() if isinstance(error, str) else ""


def _overflow(message: str, context_window: int | None) -> str:
    count, limit, over = (_int(pattern.search(message)) for pattern in (_COUNT, _LIMIT, _OVER_BY))
    limit = limit or context_window
    if count is None and over is not None and limit:
        count = limit + over
    if count is not None and limit:
        return f"prompt is too long: {count} tokens > {limit} maximum"
    return overflow_message({}, message, limit)


def _int(match: re.Match[str] | None) -> int | None:
    return int(match.group(1)) if match else None


def ollama_usage(body: dict[str, Any]) -> dict[str, int]:
    """The token counts a final answer or ``done`` line carries, in Anthropic's terms (absent ones left out)."""
    usage = {"input_tokens": body.get("prompt_eval_count"), "output_tokens": body.get("eval_count")}
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
