"""Chat-completions stream chunks as Anthropic stream events, through :class:`StreamBuilder`.

OpenAI sends usage in a last chunk with ``choices: []`` *after* the chunk carrying
``finish_reason``, so the translator remembers the finish reason and finishes when usage
arrives, at ``data: [DONE]`` or at EOF — whichever comes first. An EOF before any of them is an
error, never a fake ``end_turn``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.anthropic.events import Event, StreamBuilder
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.args import ArgumentStream, TextCallBuffer, parse_arguments
from app.providers.formats.openai_chat.errors import status_of, upstream_error
from app.providers.formats.openai_chat.reply import (
    ThinkSplitter,
    anthropic_usage,
    content_text,
    reasoning_of,
    stop_reason,
    thinking_signature,
)
from app.providers.formats.openai_chat.tools import anthropic_tool_id, tool_name_map

EARLY_EOF = "upstream stream ended before the message was complete (no finish_reason and no [DONE])"
EMPTY_STREAM = "The upstream ended the stream without answering (no content and no finish_reason)."


@dataclass
class _Call:
    key: int
    upstream_id: str | None = None
    name: str | None = None
    args: ArgumentStream = field(default_factory=ArgumentStream)
    started: bool = False
    unsent: list[str] = field(default_factory=list)


def text_call_names(request: dict[str, Any]) -> dict[str, str]:
    """Names a model may print a call with (upstream and original) -> the original name."""
    names = tool_name_map(request)
    return {**names, **{original: original for original in names.values()}}


class ReasoningText(ABC):
    """Reasoning and visible text as both stream translators emit them (chat completions, Ollama).

    Needs ``builder``, ``_thinking`` (the unsigned reasoning so far) and ``_text_calls`` (a
    :class:`TextCallBuffer` or None); the translator says whether a tool call has started.
    """

    builder: StreamBuilder
    _thinking: list[str]
    _text_calls: TextCallBuffer | None

    @abstractmethod
    def _call_started(self) -> bool:
        """Whether a tool call has begun streaming (each translator tracks its own calls)."""

    def _reason(self, text: str) -> list[Event]:
        # Reasoning after a tool call has begun would be held by the builder and emitted
        # unsigned after the call; Anthropic never puts thinking there, so it is dropped.
        if not text or self._call_started():
            return []
        self._thinking.append(text)
        return self.builder.thinking(text)

    def _sign(self) -> list[Event]:
        """Close the thinking block so far with its synthetic signature."""
        if not self._thinking:
            return []
        text, self._thinking = "".join(self._thinking), []
        return self.builder.thinking_signature(thinking_signature(text))

    def _text(self, text: str) -> list[Event]:
        if self._text_calls is not None:
            text = self._text_calls.feed(text)
        return self._sign() + self.builder.text(text) if text else []


class StreamTranslator(ReasoningText):
    """Feeds parsed ``chat.completion.chunk`` dicts to a :class:`StreamBuilder`."""

    def __init__(self, builder: StreamBuilder, *, request: dict[str, Any], caps: ModelCapabilities) -> None:
        self.builder = builder
        self.caps = caps
        self._names = tool_name_map(request)
        names = text_call_names(request)
        self._text_calls = TextCallBuffer(names) if caps.text_tool_calls and names else None
        self._think = ThinkSplitter()
        self._calls: dict[object, _Call] = {}
        self._order: list[_Call] = []
        self._last_index: object = 0
        self._thinking: list[str] = []
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._done = False
        self._answered = False  # some delta carried text, reasoning, a refusal or a tool call

    # -- public -----------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """One parsed chunk -> the Anthropic events it completes."""
        if self.builder.finished or not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            return self._failure(chunk)
        out = self.builder.start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choice = _first_choice(chunk.get("choices"))
        if choice is not None:
            delta = choice.get("delta")
            out += self._delta(delta) if isinstance(delta, dict) else []
            if isinstance(choice.get("finish_reason"), str):
                self._finish_reason = choice["finish_reason"]
        if self._finish_reason is not None and self._usage is not None:
            out += self._finish()
        return out

    def done(self) -> list[Event]:
        """The upstream sent ``data: [DONE]``: finish with what is known."""
        if self.builder.finished:
            return []
        if not self.builder.started or (self._finish_reason is None and not self._answered):
            # [DONE] with no chunk before it, or only empty chunks (``choices: []``): no answer.
            return self.builder.error("api_error", EMPTY_STREAM)
        self._done = True
        return self.builder.start() + self._finish()

    def close(self) -> list[Event]:
        """Upstream EOF: finish if the upstream said it was done, else report an error."""
        if self.builder.finished:
            return []
        if self._finish_reason is not None or self._done:
            return self.builder.start() + self._finish()
        return self.builder.error("api_error", EARLY_EOF)

    # -- deltas -----------------------------------------------------------------------------

    def _delta(self, delta: dict[str, Any]) -> list[Event]:
        reasoning, content = reasoning_of(delta), content_text(delta.get("content"))
        self._answered = self._answered or bool(
            reasoning or content or delta.get("refusal") or delta.get("tool_calls") or delta.get("function_call"))
        out = self._reason(reasoning)
        for kind, piece in self._think.feed(content):
            out += self._reason(piece) if kind == "thinking" else self._text(piece)
        if isinstance(delta.get("refusal"), str):
            out += self._text(delta["refusal"])
        for call in delta.get("tool_calls") or []:
            out += self._tool_delta(call) if isinstance(call, dict) else []
        if isinstance(delta.get("function_call"), dict):  # the legacy single-function form
            out += self._tool_delta({"index": "function_call", "function": delta["function_call"]})
        return out

    def _call_started(self) -> bool:
        return any(call.started for call in self._order)

    def _tool_delta(self, delta: dict[str, Any]) -> list[Event]:
        call = self._call_for(delta)
        function = given if isinstance(given := delta.get("function"), dict) else {}
        if isinstance(function.get("name"), str) and function["name"] and not call.name:
            call.name = function["name"]
        out = self._start(call) if call.name and not call.started else []
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            piece = call.args.feed(arguments)
            if call.started:
                out += self.builder.tool_args(call.key, piece)
            elif piece:
                call.unsent.append(piece)
        return out

    def _call_for(self, delta: dict[str, Any]) -> _Call:
        """The call a fragment belongs to, by upstream ``index`` (a new id at an index is a new call)."""
        index = delta.get("index")
        upstream_id = delta.get("id") if isinstance(delta.get("id"), str) and delta["id"] else None
        if not isinstance(index, (int, str)):
            index = upstream_id or self._last_index
        self._last_index = index
        call = self._calls.get(index)
        if call is None or (upstream_id and call.upstream_id and upstream_id != call.upstream_id):
            call = self._calls[index] = _Call(key=len(self._order))
            self._order.append(call)
        call.upstream_id = call.upstream_id or upstream_id
        return call

    def _start(self, call: _Call) -> list[Event]:
        call.started = True
        tool_id = anthropic_tool_id(call.upstream_id, message_id=self.builder.message_id, position=call.key)
        name = self._names.get(call.name or "", call.name or "")
        out = self._sign() + self.builder.tool_start(call.key, tool_id, name)
        for piece in call.unsent:
            out += self.builder.tool_args(call.key, piece)
        call.unsent.clear()
        return out

    # -- the end ----------------------------------------------------------------------------

    def _finish(self) -> list[Event]:
        out: list[Event] = []
        for kind, piece in self._think.flush():
            out += self._reason(piece) if kind == "thinking" else self._text(piece)
        out += self._printed_calls()
        problem = self._check_calls(out)
        if problem:
            return out + self.builder.error("api_error", problem)
        if self._finish_reason == "error":  # OpenRouter ends a failed generation this way
            return out + self.builder.error("api_error", "upstream reported an error while generating")
        out += self._sign()
        reason = stop_reason(self._finish_reason, has_tool_use=self.builder.has_tool_use)
        return out + self.builder.finish(reason, anthropic_usage(self._usage))

    def _printed_calls(self) -> list[Event]:
        """Text held because it may be a printed tool call: parsed now, at the end."""
        if self._text_calls is None:
            return []
        text, calls = self._text_calls.finish()
        self._text_calls = None
        out = self._text(text)
        for position, (name, arguments) in enumerate(calls, start=len(self._order)):
            tool_id = anthropic_tool_id(None, message_id=self.builder.message_id, position=position)
            out += self._sign() + self.builder.tool_start(("text", position), tool_id, name)
            out += self.builder.tool_args(("text", position), orjson.dumps(arguments).decode())
        return out

    def _check_calls(self, out: list[Event]) -> str | None:
        """Make every call's arguments valid JSON (repairing unsent ones); a problem otherwise."""
        for call in self._order:
            raw = "".join(call.args.raw)
            if not call.started:
                if raw.strip():
                    return "upstream sent tool call arguments without a function name"
                continue
            if call.args.complete:
                continue
            if "".join(call.args.sent).strip():
                return self._bad_arguments(call, raw)
            arguments = parse_arguments(raw, repair=self._finish_reason != "length")
            if arguments is None:
                return self._bad_arguments(call, raw)
            out += self.builder.tool_args(call.key, orjson.dumps(arguments).decode()) if arguments else []
        return None

    def _bad_arguments(self, call: _Call, raw: str) -> str:
        name = self._names.get(call.name or "", call.name)
        if self._finish_reason == "length":
            return f"the model ran out of output tokens in the middle of a call to {name}"
        return f"upstream sent arguments for {name} that are not valid JSON: {raw[:200]}"

    def _failure(self, chunk: dict[str, Any]) -> list[Event]:
        """An ``error`` object inside the stream (OpenRouter, vLLM): typed by its code."""
        status = status_of(chunk["error"])
        _, error_type, message = upstream_error(status, chunk, context_window=self.caps.context_window)
        return self.builder.error(error_type, message)


def _first_choice(choices: Any) -> dict[str, Any] | None:
    if not isinstance(choices, list):
        return None
    candidates = [c for c in choices if isinstance(c, dict)]
    return next((c for c in candidates if c.get("index", 0) == 0), None)
