"""Anthropic-format upstreams: what a host profile does not accept is translated or dropped.

Hosted Claude (Databricks, Azure) lags Anthropic's own API while Claude Code 2.1.x sends
``role:"system"`` turns inside ``messages``, ``thinking: {"type": "adaptive"}``,
``output_config``, ``context_management``, deferred tools and new beta flags. Per
:class:`~app.providers.capabilities.HostProfile`: system turns are hoisted into ``system`` in order,
adaptive thinking becomes enabled thinking with a budget below ``max_tokens``, deferred tools
are sent as ordinary tools and ``tool_reference`` blocks as text, unknown fields and betas are
dropped, ``max_tokens`` is clamped, and structured outputs (``output_config.format``) go where
the profile takes them. Whatever the host accepts is forwarded untouched.

Pure: dicts in, dicts or events out. Public names: :func:`to_upstream` (and
:func:`upstream_message`, one message of it), :func:`filter_betas`, :func:`from_upstream`,
:class:`StreamTranslator`.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from app.anthropic.events import Event, StreamBuilder
from app.anthropic.types import SYNTHETIC_SIGNATURE_PREFIX
from app.providers.capabilities import HostProfile, ModelCapabilities

# Budgets for adaptive thinking turned into enabled thinking, by output_config.effort.
EFFORT_BUDGETS = {"low": 4_096, "medium": 10_000, "high": 24_000, "max": 32_000}
MIN_THINKING_BUDGET = 1_024
EMPTY_MESSAGE = "The upstream ended the message without answering (no content block and no stop reason)."
TOOL_KEYS = frozenset({"name", "description", "input_schema", "cache_control", "type"})


def to_upstream(request: dict[str, Any], *, model: str, profile: HostProfile, caps: ModelCapabilities,
                as_is: Container[int] = ()) -> dict[str, Any]:
    """The request body to send to an Anthropic-format host.

    ``as_is`` holds the ``id`` of messages known to go unchanged (:func:`upstream_message` gave
    them back as they were before); they are not looked at again.
    """
    body = dict(request)
    body["model"] = model
    if not profile.system_turns:
        _hoist_system_turns(body)
    body["messages"] = [m if id(m) in as_is else upstream_message(m, profile) for m in body.get("messages") or []]
    if not profile.deferred_tools:
        _undefer_tools(body)
    if body.get("max_tokens", 0) > caps.max_output_tokens:
        body["max_tokens"] = caps.max_output_tokens
    _fit_thinking(body, profile)
    if profile.fields is not None:
        body = {k: v for k, v in body.items() if k in profile.fields}
    _fit_output_format(body, request, profile)
    return body


def _fit_output_format(body: dict[str, Any], request: dict[str, Any], profile: HostProfile) -> None:
    """Structured outputs go to a host that takes them, even one that takes no other part of
    ``output_config``; a host that does not take them gets the rest of ``output_config`` only."""
    config = request.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return
    kept = body.get("output_config")
    rest = {k: v for k, v in kept.items() if k != "format"} if isinstance(kept, dict) else {}
    if profile.output_format:
        body["output_config"] = {**rest, "format": fmt}
    elif rest:
        body["output_config"] = rest
    else:
        body.pop("output_config", None)


def filter_betas(header: str | None, profile: HostProfile) -> str | None:
    """The ``anthropic-beta`` flags this host accepts, or None when none remain."""
    if not header:
        return None
    flags = [f.strip() for f in header.split(",") if f.strip()]
    if profile.betas is not None:
        flags = [f for f in flags if f in profile.betas]
    return ",".join(flags) or None


def from_upstream(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The client's ``Message``: the upstream's, echoing the model name the client asked for."""
    return {**body, "model": model}


class StreamTranslator:
    """Relays an Anthropic upstream's events through the builder, which checks the grammar.

    A ``message_stop`` after no content block and no stop reason ends the stream in an error
    instead: that message answered nothing.
    """

    def __init__(self, builder: StreamBuilder) -> None:
        self.builder = builder
        self._answered = False  # a content block began, or a stop reason arrived

    def feed(self, event: dict[str, Any]) -> list[Event]:
        """One upstream event (parsed SSE data) → the events to send."""
        kind = event.get("type")
        if kind == "content_block_start":
            self._answered = True
        elif kind == "message_delta":
            delta = event.get("delta")
            self._answered = self._answered or bool(isinstance(delta, dict) and delta.get("stop_reason"))
        elif kind == "message_stop" and not self._answered:
            return self.builder.error("api_error", EMPTY_MESSAGE)
        return self.builder.relay(event)

    def frame(self, event: dict[str, Any]) -> bytes | None:
        """The upstream's own bytes for ``event`` when it goes to the client unchanged — a content
        block delta read as a :class:`~app.anthropic.sse.FramedEvent` — once the builder has taken
        it; ``None`` when it must be fed instead. Raises as :meth:`feed` does on a broken grammar."""
        frame: bytes | None = getattr(event, "frame", None)
        if frame is None or not frame.startswith(b"event: content_block_delta\n") \
                or event.get("type") != "content_block_delta":
            return None
        self.builder.passed_on(event)
        return frame

    def close(self) -> list[Event]:
        """Upstream EOF: a stream that did not reach ``message_stop`` ends in an error event."""
        if self.builder.finished:
            return []
        return self.builder.error("api_error", "The upstream stream ended before the message was complete.")


# -- request rewriting ------------------------------------------------------------------------


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]


def _hoist_system_turns(body: dict[str, Any]) -> None:
    messages = body.get("messages") or []
    turns = [m for m in messages if m.get("role") == "system"]
    if not turns:
        return
    hoisted = [block for turn in turns for block in _text_blocks(turn.get("content"))]
    if hoisted:
        body["system"] = _text_blocks(body.get("system")) + hoisted
    body["messages"] = [m for m in messages if m.get("role") != "system"]


def upstream_message(message: dict[str, Any], profile: HostProfile) -> dict[str, Any]:
    """One message as the host takes it; the very same object when nothing in it changes.

    Reads only ``profile.deferred_tools`` of the profile (a caller remembering the answer per
    message keys it by that).
    """
    message = _drop_synthetic_thinking(message)
    return message if profile.deferred_tools else _references_as_text(message)


def _drop_synthetic_thinking(message: dict[str, Any]) -> dict[str, Any]:
    """Thinking Lynkr synthesised from another model's reasoning never goes to Anthropic."""
    content = message.get("content")
    if message.get("role") == "assistant" and isinstance(content, list) and any(_is_synthetic(b) for b in content):
        return {**message, "content": [b for b in content if not _is_synthetic(b)]}
    return message


def _is_synthetic(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "thinking"
        and str(block.get("signature", "")).startswith(SYNTHETIC_SIGNATURE_PREFIX)
    )


def _fit_thinking(body: dict[str, Any], profile: HostProfile) -> None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return
    kind = thinking.get("type")
    if kind == "adaptive" and not profile.adaptive_thinking:
        effort = (body.get("output_config") or {}).get("effort", "medium")
        thinking = {"type": "enabled", "budget_tokens": EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"])}
    if thinking.get("type") == "enabled":
        budget = min(int(thinking.get("budget_tokens", 0)), body.get("max_tokens", 0) - 1)
        if budget < MIN_THINKING_BUDGET or _continuation_lost_thinking(body):
            body.pop("thinking")
            return
        # Hosts without adaptive thinking predate its options (e.g. "display") as well.
        thinking = {"type": "enabled", "budget_tokens": budget} if not profile.adaptive_thinking \
            else {**thinking, "budget_tokens": budget}
    body["thinking"] = thinking


def _continuation_lost_thinking(body: dict[str, Any]) -> bool:
    """A tool-use continuation whose last assistant turn has no thinking block.

    With thinking on, Anthropic requires the assistant turn that made the pending tool call to
    start with its thinking block; after a session switched model families that block is ours
    (dropped above) or absent, so thinking is turned off for this request instead of a 400.
    """
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list) or not any(b.get("type") == "tool_use" for b in content):
            return False
        return not any(b.get("type") in ("thinking", "redacted_thinking") for b in content)
    return False


def _undefer_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if isinstance(tools, list):
        body["tools"] = [
            {k: v for k, v in tool.items() if k in TOOL_KEYS} if "input_schema" in tool and not tool.keys() <= TOOL_KEYS
            else tool
            for tool in tools
        ]


def _references_as_text(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return message
    changed = False
    blocks = []
    for block in content:
        inner = block.get("content") if block.get("type") == "tool_result" else None
        if isinstance(inner, list) and any(b.get("type") == "tool_reference" for b in inner):
            block = {**block, "content": [_reference_text(b) for b in inner]}
            changed = True
        blocks.append(block)
    return {**message, "content": blocks} if changed else message


def _reference_text(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") != "tool_reference":
        return block
    return {"type": "text", "text": f"Tool {block.get('tool_name', '')} is now available to call."}
