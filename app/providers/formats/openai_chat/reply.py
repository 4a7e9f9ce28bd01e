"""Pieces of a chat-completions answer shared by the JSON and the stream translation.

Stop reasons, usage, the synthetic signature of thinking blocks, where reasoning hides in a
delta or message, and :class:`ThinkSplitter`, which moves a leading ``<think>…</think>`` in the
content into thinking.
"""

from __future__ import annotations

import hashlib
from typing import Any

from app.anthropic.types import SYNTHETIC_SIGNATURE_PREFIX, StopReason, Usage

STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def stop_reason(finish_reason: Any, *, has_tool_use: bool) -> StopReason:
    """Anthropic ``stop_reason``: ``tool_use`` exactly when calls exist, whatever the upstream said."""
    if has_tool_use:
        return "tool_use"
    reason = STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    return "end_turn" if reason == "tool_use" else reason


def anthropic_usage(usage: Any) -> Usage | None:
    """Chat-completions ``usage`` in Anthropic's terms (cached prompt tokens split out)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    # DeepSeek reports its cache hits at the top level instead of in prompt_tokens_details.
    cached = _count(cached) or _count(usage.get("prompt_cache_hit_tokens"))
    prompt = _count(usage.get("prompt_tokens"))
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": _count(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def thinking_signature(thinking: str) -> str:
    """The signature of a thinking block Lynkr synthesised (never valid for Anthropic)."""
    return SYNTHETIC_SIGNATURE_PREFIX + hashlib.sha256(thinking.encode()).hexdigest()[:16]


def reasoning_of(part: dict[str, Any]) -> str:
    """Reasoning text of a message or delta.

    DeepSeek, Kimi and vLLM send ``reasoning_content``; OpenRouter and Ollama send
    ``reasoning``; some servers send both with the same text, so only the first counts.
    """
    for key in ("reasoning_content", "reasoning"):
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def content_text(content: Any) -> str:
    """Message content as text (some servers answer with a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


class ThinkSplitter:
    """Splits streamed content into thinking and text at a leading ``<think>…</think>``.

    Models served without a reasoning parser (DeepSeek-R1 distills, QwQ on llama.cpp or
    vLLM) print their reasoning inside ``<think>`` tags at the start of the content. Leading
    whitespace of the text is dropped, so whitespace alone never makes a text block.
    """

    def __init__(self) -> None:
        self._mode = "start"  # start | think | after | text
        self._buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        """Take a content fragment; return ``("thinking" | "text", piece)`` pairs ready now."""
        self._buffer += text
        out: list[tuple[str, str]] = []
        while self._buffer and self._advance(out):
            pass
        return [(kind, piece) for kind, piece in out if piece]

    def _advance(self, out: list[tuple[str, str]]) -> bool:
        """One step of the state machine; False when it must wait for more text."""
        if self._mode in ("start", "after"):
            head = self._buffer.lstrip()
            if self._mode == "start" and head.startswith(THINK_OPEN):
                self._mode, self._buffer = "think", head[len(THINK_OPEN) :]
                return True
            if not head or (self._mode == "start" and THINK_OPEN.startswith(head)):
                return False
            self._mode, self._buffer = "text", head
        if self._mode == "text":
            out.append(("text", self._buffer))
            self._buffer = ""
            return False
        end = self._buffer.find(THINK_CLOSE)
        if end >= 0:
            out.append(("thinking", self._buffer[:end]))
            self._mode, self._buffer = "after", self._buffer[end + len(THINK_CLOSE) :]
            return True
        keep = partial_suffix(self._buffer, THINK_CLOSE)
        out.append(("thinking", self._buffer[: len(self._buffer) - keep]))
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return False

    def flush(self) -> list[tuple[str, str]]:
        """What is still held at the end of the content."""
        buffer, self._buffer = self._buffer, ""
        if self._mode == "think":
            return [("thinking", buffer)] if buffer else []
        head = buffer.lstrip() if self._mode in ("start", "after") else buffer
        return [("text", head)] if head else []


def split_think(content: str) -> tuple[str, str]:
    """Non-streamed content as ``(thinking, text)``."""
    splitter = ThinkSplitter()
    pieces = splitter.feed(content) + splitter.flush()
    thinking = "".join(piece for kind, piece in pieces if kind == "thinking")
    return thinking, "".join(piece for kind, piece in pieces if kind == "text")


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def anthropic_message(*, message_id: str, model: str, thinking: str, text: str, calls: list[dict[str, Any]],
                      stop: StopReason, usage: Usage) -> dict[str, Any]:
    """An Anthropic ``Message``: thinking first (with a synthetic signature), then text, then calls."""
    content: list[dict[str, Any]] = []
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)})
    if text.strip():
        content.append({"type": "text", "text": text})
    content += calls
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": usage}
