"""Server-sent events: encoding our frames and decoding upstream streams.

Encoding is the only place that writes ``event: …\\ndata: …`` bytes. Decoding follows the
WHATWG "event stream interpretation" rules: lines end at CRLF, LF or CR (and only those —
U+2028 inside a JSON string is data), a CRLF may be split across reads, multi-byte UTF-8
may be split across reads, a leading BOM is dropped, ``:`` lines are comments, and an event
is dispatched on a blank line.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One decoded event: ``event`` defaults to ``"message"`` as in the spec."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON (raises ``orjson.JSONDecodeError``)."""
        return orjson.loads(self.data)


def encode(event: dict[str, Any]) -> bytes:
    """One Anthropic stream event as an SSE frame, named after its ``type``."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def comment(text: str = "keepalive") -> bytes:
    """An SSE comment line, ignored by clients but enough to keep a connection warm."""
    return b": " + text.encode() + b"\n\n"


class SSEDecoder:
    """Incremental decoder: feed raw bytes, get complete events back."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return the events it completes, in order."""
        text = self._utf8.decode(chunk)
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buffer += text
        return self._drain_lines()

    def _drain_lines(self) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        buffer = self._buffer
        start = 0
        size = len(buffer)
        while start < size:
            lf = buffer.find("\n", start)
            cr = buffer.find("\r", start, lf if lf >= 0 else size)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < size and buffer[nxt] == "\n":
                    nxt += 1
                elif nxt == size:
                    # A CR at the end of a read may be the first half of a CRLF.
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            event = self._process_line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = nxt
        self._buffer = buffer[start:]
        return events

    def _process_line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._event = ""
        self._data = []
        return event
