"""What the agent loop shows the client, as typed operations, and the step builder that yields them.

The loop never builds Anthropic events itself: it yields :data:`Op` values, and :func:`apply`
feeds each one to the client's :class:`~app.anthropic.events.StreamBuilder` — for a JSON answer
and for a live SSE stream alike, so both show the same message. A streamed model step is
translated by the provider's own translator into a :class:`StepBuilder`, which keeps the step's
whole message (tool calls included) and hands over the visible deltas as ops as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.anthropic.events import Event, StreamBuilder
from app.anthropic.sse import FramedEvent
from app.errors import LynkrError, error_for_event


@dataclass(frozen=True)
class Text:
    """Visible text (the model's, or a line of progress); ``relayed`` is the upstream delta it
    came from when that kept its own bytes (:class:`~app.anthropic.sse.FramedEvent`)."""

    text: str
    relayed: FramedEvent | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Thinking:
    """Reasoning, shown as a ``thinking`` block; ``relayed`` as for :class:`Text`."""

    text: str
    relayed: FramedEvent | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Signature:
    """The signature of the open thinking block."""

    signature: str


@dataclass(frozen=True)
class ClientToolCall:
    """A ``tool_use`` block the client runs."""

    call: dict[str, Any]


@dataclass(frozen=True)
class ServerBlock:
    """A whole visible server block (``server_tool_use``, ``web_search_tool_result``)."""

    block: dict[str, Any]


@dataclass(frozen=True)
class Finish:
    """The end of the turn."""

    stop_reason: str
    usage: dict[str, int]


Op = Text | Thinking | Signature | ClientToolCall | ServerBlock | Finish


def apply(builder: StreamBuilder, op: Op) -> list[Event]:
    """Feed one op to ``builder``; the events it emits."""
    match op:
        case Text(text=text):
            return builder.text(text)
        case Thinking(text=text):
            return builder.thinking(text)
        case Signature(signature):
            return builder.thinking_signature(signature)
        case ClientToolCall(call):
            return (builder.tool_start(call["id"], call["id"], call["name"])
                    + builder.tool_args(call["id"], orjson.dumps(call.get("input") or {}).decode()))
        case ServerBlock(block):
            return builder.block(block)
        case Finish(stop_reason, usage):
            return builder.finish(stop_reason, usage)
    raise TypeError(f"not an agent op: {op!r}")


class StepBuilder(StreamBuilder):
    """The builder a streamed model step is translated into.

    It accumulates the step's message like any builder; the visible deltas it emits are
    collected as ops (:meth:`take`), and an ``error`` event the upstream sent mid-stream is kept
    as the :class:`LynkrError` it stands for (:attr:`failure`).
    """

    def __init__(self, *, model: str) -> None:
        super().__init__(message_id="step", model=model)
        self.failure: LynkrError | None = None
        self._ops: list[Op] = []

    def _emit(self, out: list[Event], event: Event) -> None:
        super()._emit(out, event)
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            relayed = event if isinstance(event, FramedEvent) else None
            if delta.get("type") == "text_delta":
                self._ops.append(Text(delta.get("text", ""), relayed))
            elif delta.get("type") == "thinking_delta":
                self._ops.append(Thinking(delta.get("thinking", ""), relayed))
            elif delta.get("type") == "signature_delta":
                self._ops.append(Signature(delta.get("signature", "")))
        elif kind == "error":
            self.failure = error_for_event(event.get("error"))

    def take(self) -> list[Op]:
        """The ops emitted since the last call."""
        ops, self._ops = self._ops, []
        return ops
