"""The one state machine that emits Anthropic stream events.

Translators never build events themselves: they call the :class:`StreamBuilder` with what the
upstream said (``text``, ``thinking``, ``tool_start``/``tool_args``, ``finish``) or, for
Anthropic-format upstreams, ``relay`` each upstream event. The builder guarantees a valid
sequence — ``message_start``, blocks with strictly increasing indices, one open at a time,
deltas only for the open block, ``message_delta``, ``message_stop`` — never emits an empty
block, and turns an upstream that stops without finishing into an ``error`` event.

:class:`StreamGrammar` is the strict checker the builder relays through and the test suite
runs over every stream; :class:`MessageAccumulator` folds events into the final ``Message``
(for transcripts, usage records and the prompt cache).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.anthropic.types import TextBlock, ThinkingBlock, ToolUseBlock

Event = dict[str, Any]

BLOCK_EVENTS = frozenset({"content_block_start", "content_block_delta", "content_block_stop"})
_DELTA_KINDS = {"text_delta": "text", "thinking_delta": "thinking"}  # a delta's type → its block's


class StreamGrammarError(ValueError):
    """A stream broke the Anthropic event grammar."""


class StreamGrammar:
    """Incremental checker of the Anthropic stream event grammar."""

    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.errored = False
        self.delta_seen = False
        self.open_index: int | None = None
        self.last_index = -1

    def feed(self, event: Event) -> None:
        """Check one event; raises :class:`StreamGrammarError` on a violation."""
        kind = event.get("type")
        if self.stopped or self.errored:
            raise StreamGrammarError(f"{kind} after the stream ended")
        if kind == "error":
            self.errored = True
            return
        if kind == "message_start":
            if self.started:
                raise StreamGrammarError("second message_start")
            self.started = True
            return
        if not self.started:
            raise StreamGrammarError(f"{kind} before message_start")
        if kind in BLOCK_EVENTS:
            self._feed_block(kind, event)
        elif kind == "message_delta":
            if self.open_index is not None:
                raise StreamGrammarError("message_delta while a content block is open")
            self.delta_seen = True
        elif kind == "message_stop":
            if not self.delta_seen:
                raise StreamGrammarError("message_stop without message_delta")
            self.stopped = True
        elif kind == "ping":
            return

    def _feed_block(self, kind: str, event: Event) -> None:
        if self.delta_seen:
            raise StreamGrammarError(f"{kind} after message_delta")
        index = event.get("index")
        if not isinstance(index, int):
            raise StreamGrammarError(f"{kind} without an integer index")
        if kind == "content_block_start":
            if self.open_index is not None:
                raise StreamGrammarError(f"block {index} opened while {self.open_index} is open")
            if index <= self.last_index:
                raise StreamGrammarError(f"block index {index} does not increase")
            self.open_index = self.last_index = index
        elif index != self.open_index:
            raise StreamGrammarError(f"{kind} for block {index}, open block is {self.open_index}")
        elif kind == "content_block_stop":
            self.open_index = None

    def close(self) -> None:
        """Check that the stream ended properly (message_stop or an error event)."""
        if not (self.stopped or self.errored):
            raise StreamGrammarError("stream ended without message_stop or error")


def validate_stream(events: list[Event]) -> None:
    """Check a whole event list; raises :class:`StreamGrammarError` on the first violation."""
    grammar = StreamGrammar()
    for event in events:
        grammar.feed(event)
    grammar.close()


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than ``copy.deepcopy``)."""
    return orjson.loads(orjson.dumps(value))


class MessageAccumulator:
    """Folds stream events into the final Anthropic ``Message`` dict."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self._json: dict[int, list[str]] = {}

    def feed(self, event: Event) -> None:
        """Apply one event to the message being built."""
        kind = event.get("type")
        if kind == "message_start":
            self.message = _copy(event["message"])
            self.message.setdefault("content", [])
        elif kind == "content_block_start":
            self.message["content"].append(_copy(event["content_block"]))
        elif kind == "content_block_delta":
            self._apply_delta(event["index"], event["delta"])
        elif kind == "content_block_stop":
            self._finish_json(event["index"])
        elif kind == "message_delta":
            self.message.update(event.get("delta") or {})
            usage = self.message.setdefault("usage", {})
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})

    def _apply_delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self.message["content"][-1]
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta.get("text", "")
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "input_json_delta":
            self._json.setdefault(index, []).append(delta.get("partial_json", ""))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def _finish_json(self, index: int) -> None:
        parts = self._json.pop(index, None)
        if parts is None:
            return
        raw = "".join(parts)
        if raw.strip():
            # Translators only emit parseable arguments; a relayed upstream might not.
            with contextlib.suppress(orjson.JSONDecodeError):
                self.message["content"][-1]["input"] = orjson.loads(raw)


@dataclass
class _PendingTool:
    id: str
    name: str
    args: list[str] = field(default_factory=list)


class StreamBuilder:
    """Emits a valid Anthropic event sequence from what a translator reports.

    Every method returns the events to send now, in order. Tool calls are keyed by the
    upstream's own index (``key``); the first call streams live, and calls that start while
    another is open are held and emitted whole at ``finish`` — so fragments of parallel calls
    that interleave land in the right blocks. Text arriving while a tool block is open is
    held too (it must not split the call) and flushed in arrival order.
    """

    def __init__(self, *, message_id: str, model: str, input_tokens: int = 0) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.grammar = StreamGrammar()
        self.accumulator = MessageAccumulator()
        self._next_index = 0
        self._open: str | None = None  # "text" | "thinking" | "tool" | "relay"
        self._open_tool: object = None
        self._held: list[tuple[str, Any]] = []
        self._held_tools: dict[object, _PendingTool] = {}
        self._seen_tools: set[object] = set()
        self._has_tool_use = False

    # -- emitting ---------------------------------------------------------------------------

    def _emit(self, out: list[Event], event: Event) -> None:
        self.grammar.feed(event)
        self.accumulator.feed(event)
        out.append(event)

    @property
    def started(self) -> bool:
        """Whether ``message_start`` has been emitted."""
        return self.grammar.started

    @property
    def has_tool_use(self) -> bool:
        """Whether any ``tool_use`` block has been emitted or is held for emission."""
        return self._has_tool_use

    def start(self, usage: dict[str, Any] | None = None) -> list[Event]:
        """Emit ``message_start`` (idempotent; every other method calls it first)."""
        out: list[Event] = []
        if not self.grammar.started:
            message: dict[str, Any] = {  # a Message, with whatever usage the caller reports
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage or {"input_tokens": self.input_tokens, "output_tokens": 0},
            }
            self._emit(out, {"type": "message_start", "message": message})
        return out

    def ping(self) -> list[Event]:
        """A ``ping`` event (only valid once the message has started)."""
        out = self.start()
        self._emit(out, {"type": "ping"})
        return out

    def text(self, text: str) -> list[Event]:
        """Append visible text."""
        return self._delta("text", text)

    def thinking(self, text: str) -> list[Event]:
        """Append reasoning, shown to the client as a ``thinking`` block."""
        return self._delta("thinking", text)

    def thinking_signature(self, signature: str) -> list[Event]:
        """Attach a signature to the open thinking block."""
        out = self.start()
        if self._open == "thinking" and signature:
            delta = {"type": "signature_delta", "signature": signature}
            self._emit(out, self._block_delta(delta))
        return out

    def tool_start(self, key: object, tool_id: str, name: str) -> list[Event]:
        """Begin a tool call identified by the upstream's ``key`` (its index)."""
        out = self.start()
        self._has_tool_use = True
        if key in self._seen_tools:
            return out
        self._seen_tools.add(key)
        if self._open == "tool" or self._held:
            tool = _PendingTool(tool_id, name)
            self._held_tools[key] = tool
            self._held.append(("tool", tool))
            return out
        self._close(out)
        tool_use: ToolUseBlock = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        self._open_block(out, tool_use)
        self._open, self._open_tool = "tool", key
        return out

    def tool_args(self, key: object, fragment: str) -> list[Event]:
        """Append a fragment of a call's JSON arguments."""
        out = self.start()
        if not fragment:
            return out
        if self._open == "tool" and key == self._open_tool:
            self._emit(out, self._block_delta({"type": "input_json_delta", "partial_json": fragment}))
        elif key in self._held_tools:
            self._held_tools[key].args.append(fragment)
        return out

    def finish(
        self,
        stop_reason: str | None,
        usage: Mapping[str, Any] | None = None,
        stop_sequence: str | None = None,
    ) -> list[Event]:
        """Close everything and emit ``message_delta`` + ``message_stop``."""
        out = self.start()
        self._close(out)
        self._flush_held(out)
        final_usage = {"input_tokens": self.input_tokens, "output_tokens": 0}
        final_usage.update({k: v for k, v in (usage or {}).items() if v is not None})
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        self._emit(out, {"type": "message_delta", "delta": delta, "usage": final_usage})
        self._emit(out, {"type": "message_stop"})
        return out

    def block(self, block: dict[str, Any]) -> list[Event]:
        """Emit one whole block (a ``server_tool_use`` or a ``web_search_tool_result``).

        A block with an ``input`` starts empty and gets it as one ``input_json_delta``, as the
        Anthropic API streams server tool calls.
        """
        out = self.start()
        self._close(out)
        self._flush_held(out)
        has_input = "input" in block
        self._open_block(out, {**block, "input": {}} if has_input else block)
        self._open = "block"
        if has_input and block["input"]:
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}
            self._emit(out, self._block_delta(delta))
        self._close(out)
        return out

    def error(self, error_type: str, message: str) -> list[Event]:
        """Emit an ``error`` event ending the stream (e.g. an upstream EOF or failure)."""
        out: list[Event] = []
        if self.grammar.stopped or self.grammar.errored:
            return out
        self._emit(out, {"type": "error", "error": {"type": error_type, "message": message}})
        return out

    @property
    def finished(self) -> bool:
        """Whether the stream has ended, by ``message_stop`` or ``error``."""
        return self.grammar.stopped or self.grammar.errored

    def relay(self, event: Event) -> list[Event]:
        """Pass an Anthropic upstream event through, checking the grammar.

        ``message_start`` gets the model name the client asked for; unknown event types and
        fields pass unchanged.
        """
        out: list[Event] = []
        kind = event.get("type")
        if kind == "message_start":
            if self.grammar.started:
                return out
            message = dict(event.get("message") or {})
            self.message_id = message.setdefault("id", self.message_id)
            message["model"] = self.model
            event = {**event, "message": message}
        elif kind == "content_block_start":
            self._has_tool_use = self._has_tool_use or (
                (event.get("content_block") or {}).get("type") == "tool_use"
            )
        self._emit(out, event)
        return out

    def passed_on(self, event: Event) -> None:
        """Account for a relayed event the caller sends itself (checking the grammar, as :meth:`relay`)."""
        self._emit([], event)

    def passes_on_delta(self, event: Event) -> bool:
        """Account for another stream's text or reasoning delta that lands exactly where this
        builder would put it — into its open block of that kind, at the same index — so the caller
        may send that delta's own bytes; False, having done nothing, when it must be fed instead."""
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return False
        kind = _DELTA_KINDS.get(str(delta.get("type")))
        if (kind is None or self._open != kind or self._held or event.get("index") != self._next_index
                or not delta.get(kind)):
            return False
        self._emit([], event)
        return True

    # -- internals --------------------------------------------------------------------------

    def _delta(self, kind: str, text: str) -> list[Event]:
        out = self.start()
        if not text:
            return out
        if self._open == "tool" or self._held:
            self._held.append((kind, text))
            return out
        if self._open != kind:
            self._close(out)
            block: TextBlock | ThinkingBlock = (
                {"type": "text", "text": ""} if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            self._open_block(out, block)
            self._open = kind
        key = "text" if kind == "text" else "thinking"
        self._emit(out, self._block_delta({"type": f"{key}_delta", key: text}))
        return out

    def _open_block(self, out: list[Event], block: Mapping[str, Any]) -> None:
        event = {"type": "content_block_start", "index": self._next_index, "content_block": block}
        self._emit(out, event)

    def _block_delta(self, delta: dict[str, Any]) -> Event:
        return {"type": "content_block_delta", "index": self._next_index, "delta": delta}

    def _close(self, out: list[Event]) -> None:
        if self._open is None:
            return
        self._emit(out, {"type": "content_block_stop", "index": self._next_index})
        self._next_index += 1
        self._open, self._open_tool = None, None

    def _flush_held(self, out: list[Event]) -> None:
        held, self._held = self._held, []
        for kind, item in held:
            if kind == "tool":
                self._close(out)
                tool_use: ToolUseBlock = {"type": "tool_use", "id": item.id, "name": item.name, "input": {}}
                self._open_block(out, tool_use)
                self._open = "tool"
                args = "".join(item.args)
                if args:
                    self._emit(out, self._block_delta({"type": "input_json_delta", "partial_json": args}))
                self._close(out)
            else:
                out.extend(self._delta(kind, item))
        self._close(out)
        self._held_tools.clear()
