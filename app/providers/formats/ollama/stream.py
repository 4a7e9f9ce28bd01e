"""Ollama NDJSON stream lines as Anthropic stream events, through :class:`StreamBuilder`.

Each line is ``{"message": {...}, "done": false}``; the last is ``done: true`` with
``done_reason`` and the token counts. Ollama delivers a tool call whole, in one line (often
several calls in the same line), with its arguments as an object: each call still streams
out as an Anthropic tool block — ``tool_start`` then the JSON-encoded arguments. A failure
after the status was sent arrives as a line ``{"error": "..."}``; an EOF before ``done`` is an
error, never a fake ``end_turn``.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.anthropic.events import Event, StreamBuilder
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.reply import ollama_usage, upstream_error
from app.providers.formats.ollama.tools import call_parts, printed_call_names, tool_id
from app.providers.formats.openai_chat.args import TextCallBuffer
from app.providers.formats.openai_chat.reply import ThinkSplitter, content_text, stop_reason
from app.providers.formats.openai_chat.stream import ReasoningText

EARLY_EOF = "Ollama's stream ended before the message was complete (no line with done: true)"
EMPTY_STREAM = "Ollama ended the stream without answering (no content and no done_reason)."


class StreamTranslator(ReasoningText):
    """Feeds parsed ``/api/chat`` stream lines to a :class:`StreamBuilder`."""

    def __init__(self, builder: StreamBuilder, *, request: dict[str, Any], caps: ModelCapabilities) -> None:
        self.builder = builder
        self.caps = caps
        names = printed_call_names(request, caps)
        self._text_calls = TextCallBuffer(names) if names else None
        self._think = ThinkSplitter()
        self._thinking: list[str] = []
        self._calls = 0
        self._answered = False  # some line carried text, thinking or a tool call

    def feed(self, item: dict[str, Any]) -> list[Event]:
        """One parsed NDJSON line -> the Anthropic events it completes."""
        if self.builder.finished or not isinstance(item, dict):
            return []
        if item.get("error"):
            _, error_type, error_message = upstream_error(500, item, context_window=self.caps.context_window)
            return self.builder.error(error_type, error_message)
        out = self.builder.start()
        message = item.get("message")
        if isinstance(message, dict):
            out += self._message(message)
        if item.get("done") is True and not self.builder.finished:
            out += self._finish(item)
        return out

    def close(self) -> list[Event]:
        """Upstream EOF: the ``done`` line already finished the message, else this is an error."""
        if self.builder.finished:
            return []
        return self.builder.error("api_error", EARLY_EOF)

    # -- message parts ----------------------------------------------------------------------

    def _message(self, message: dict[str, Any]) -> list[Event]:
        thinking = given if isinstance(given := message.get("thinking"), str) else ""
        content = content_text(message.get("content"))
        self._answered = self._answered or bool(thinking or content or message.get("tool_calls"))
        out = self._reason(thinking)
        for kind, piece in self._think.feed(content):
            out += self._reason(piece) if kind == "thinking" else self._text(piece)
        for call in message.get("tool_calls") or []:
            if self.builder.finished:
                break
            out += self._call(call)
        return out

    def _call_started(self) -> bool:
        return self._calls > 0

    def _call(self, call: Any) -> list[Event]:
        name, arguments = call_parts(call)
        if not name:
            return self.builder.error("api_error", "Ollama sent a tool call without a function name")
        if arguments is None:
            return self.builder.error("api_error", f"Ollama sent arguments for {name} that are not a JSON object")
        return self._tool(name, arguments)

    def _tool(self, name: str, arguments: dict[str, Any]) -> list[Event]:
        position, self._calls = self._calls, self._calls + 1
        out = self._sign() + self.builder.tool_start(position, tool_id(self.builder.message_id, position), name)
        return out + self.builder.tool_args(position, orjson.dumps(arguments).decode())

    # -- the end ----------------------------------------------------------------------------

    def _finish(self, item: dict[str, Any]) -> list[Event]:
        if not self._answered and not item.get("done_reason"):
            return self.builder.error("api_error", EMPTY_STREAM)
        out: list[Event] = []
        for kind, piece in self._think.flush():
            out += self._reason(piece) if kind == "thinking" else self._text(piece)
        out += self._printed_calls()
        out += self._sign()
        reason = stop_reason(item.get("done_reason"), has_tool_use=self.builder.has_tool_use)
        return out + self.builder.finish(reason, ollama_usage(item))

    def _printed_calls(self) -> list[Event]:
        """Text held because it may be a printed tool call: parsed now, at the end."""
        if self._text_calls is None:
            return []
        text, calls = self._text_calls.finish()
        self._text_calls = None
        out = self._text(text)
        for name, arguments in calls:
            out += self._tool(name, arguments)
        return out
