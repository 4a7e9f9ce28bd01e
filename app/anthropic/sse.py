"""Server-sent events: encoding our frames and decoding upstream streams.

Encoding is the only place that writes ``event: …\\ndata: …`` bytes. Decoding follows the
WHATWG "event stream interpretation" rules: lines end at CRLF, LF or CR (and only those —
U+2028 inside a JSON string is data), a CRLF may be split across reads, multi-byte UTF-8
may be split across reads, a leading BOM is dropped, ``:`` lines are comments, and an event
is dispatched on a blank line. Decoding is linear in the stream's size and, given a limit,
bounded in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One decoded event: ``event`` defaults to ``"message"`` as in the spec.

    ``frame`` is the event's own bytes when they are exactly what :func:`encode` would write for
    it (an ``event:`` line, one ``data:`` line, a blank line), so a relay can send them on as is.
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None
    frame: bytes | None = field(default=None, compare=False)

    def json(self) -> Any:
        """The data parsed as JSON (raises ``orjson.JSONDecodeError``)."""
        return orjson.loads(self.data)


class FramedEvent(dict[str, Any]):
    """An event's JSON data that keeps the event's own bytes (``frame``), for relaying unchanged."""

    __slots__ = ("frame",)

    def __init__(self, data: dict[str, Any], frame: bytes) -> None:
        super().__init__(data)
        self.frame = frame


def encode(event: dict[str, Any]) -> bytes:
    """One Anthropic stream event as an SSE frame, named after its ``type``."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def comment(text: str = "keepalive") -> bytes:
    """An SSE comment line, ignored by clients but enough to keep a connection warm."""
    return b": " + text.encode() + b"\n\n"


class EventTooLargeError(Exception):
    """A line, or an event's data, grew past the decoder's limit before it ended."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an SSE line or event is larger than {limit} bytes")
        self.limit = limit
        self.completed: list[ServerSentEvent] = []  # the events the same read completed before it


_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Incremental decoder: feed raw bytes, get complete events back.

    Work is linear in the bytes fed: only each new read is searched for line ends, and the
    pieces of an unfinished line are kept as a list and joined once, when the line ends. CR and
    LF never occur inside a multi-byte UTF-8 sequence, so lines are split as bytes and each
    complete line is decoded on its own (a character split across reads is whole by then).
    ``max_event_bytes`` bounds one line and one event's data; past it :meth:`feed` raises
    :class:`EventTooLargeError` (memory stays near the limit).
    """

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self.max_event_bytes = max_event_bytes
        self._head = b""  # the first bytes, until a leading BOM can be told apart
        self._started = False
        self._pending_cr = False
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return the events it completes, in order.

        An over-limit line raises :class:`EventTooLargeError` carrying the events ``chunk``
        completed before it (a burst read at once still delivers what came first).
        """
        events: list[ServerSentEvent] = []
        if not self._started:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return events
            self._started, self._head = True, b""
            chunk = chunk.removeprefix(_BOM)
        if self._whole_events(chunk, events):
            return events
        try:
            self._feed(chunk, events)
        except EventTooLargeError as exc:
            exc.completed = events
            raise
        return events

    def _whole_events(self, chunk: bytes, events: list[ServerSentEvent]) -> bool:
        """The common case at speed: ``chunk`` is whole events, each one ``data:`` line (after one
        ``event:`` line, or alone as OpenAI sends them) ending in LF, read with nothing pending.
        Returns False, having added nothing, when ``chunk`` is anything else (the line-by-line
        decoder then takes it)."""
        if (self._partial or self._data or self._event or self._pending_cr
                or not chunk.endswith(b"\n\n") or b"\r" in chunk):
            return False
        limit = self.max_event_bytes
        decoded: list[ServerSentEvent] = []
        for block in chunk.split(b"\n\n")[:-1]:
            if block.startswith(b"data: "):  # a data-only event (OpenAI's format): no frame to relay
                head, data = b"", block[6:]
            else:
                head, sep, data = block.partition(b"\ndata: ")
                if not sep or not head.startswith(b"event: ") or b"\n" in head:
                    return False
            if b"\n" in data or (limit is not None and len(block) > limit):
                return False
            try:  # bytes sent on as they are must be valid UTF-8; others are decoded line by line
                name, text = head[7:].decode() or "message", data.decode()
            except UnicodeDecodeError:
                return False
            frame = block + b"\n\n" if head else None
            decoded.append(ServerSentEvent(name, text, self._last_id, self._retry, frame))
        events += decoded
        return True

    def _feed(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        if self._pending_cr:
            self._pending_cr = False
            chunk = chunk.removeprefix(b"\n")
        start, size = 0, len(chunk)
        while start < size:
            # bytes.find runs at memory speed; a regex over each read was most of the time.
            lf = chunk.find(b"\n", start)
            cr = chunk.find(b"\r", start, lf if lf >= 0 else size)
            if cr >= 0:
                end, start_next = cr, cr + 1
                if start_next < size and chunk[start_next] == 0x0A:
                    start_next += 1
                elif start_next == size:
                    self._pending_cr = True  # a CR at the end of a read may be the first half of a CRLF
            elif lf >= 0:
                end, start_next = lf, lf + 1
            else:
                break
            event = self._process_line(self._line(chunk[start:end]))
            if event is not None:
                events.append(event)
            start = start_next
        if start < size:
            self._keep(chunk[start:])

    def _keep(self, piece: bytes) -> None:
        self._partial.append(piece)
        self._partial_size += len(piece)
        self._check(self._partial_size)

    def _line(self, tail: bytes) -> str:
        if self._partial:
            self._check(self._partial_size + len(tail))
            self._partial.append(tail)
            tail = b"".join(self._partial)
            self._partial, self._partial_size = [], 0
        else:
            self._check(len(tail))
        return tail.decode("utf-8", "replace")

    def _check(self, size: int) -> None:
        if self.max_event_bytes is not None and size > self.max_event_bytes:
            raise EventTooLargeError(self.max_event_bytes)

    def _process_line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            self._check(self._data_size)
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
        self._data_size = 0
        return event
