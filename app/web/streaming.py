"""The streaming response: status first, keepalive while the source is silent, pings after.

The source (an upstream stream or the agent's turn) is read by :mod:`app.pump` on a helper
thread. The request thread holds the HTTP status until the source answers (so 429/529 with
``retry-after`` and fallback keep their meaning); if it is silent past the commit threshold the
response commits 200 and sends SSE comments until ``message_start``, then ``ping`` events after
each interval of silence. A later failure becomes an SSE ``error`` event and is reported to
``on_done`` as a :class:`~app.errors.LynkrError`. When the client goes away the generator is
closed, the upstream socket is shut down at once and the helper thread ends.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterator
from typing import Any

from app.anthropic import sse
from app.anthropic.events import Event, StreamBuilder
from app.errors import ConnectionBrokenError, LynkrError, UpstreamError, error_for_event
from app.logging import get_logger, redact_value
from app.pump import END, ITEM, OPEN, StreamStart

log = get_logger("streaming")
PRE_START_COMMENT_INTERVAL_S = 5.0
StreamDone = Callable[[StreamBuilder, "LynkrError | None"], None]


class StreamBody:
    """The response iterable: cleans up even when the server closes it before the first byte.

    A generator closed before it started never runs its ``finally``; gunicorn does exactly that
    when the client is gone before the headers could be written.
    """

    def __init__(self, events: Generator[bytes, None, None], start: StreamStart, builder: StreamBuilder,
                 on_done: StreamDone) -> None:
        self._events = events
        self._start = start
        self._builder = builder
        self._on_done = on_done

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        """Close the body; if it never started, stop the upstream reader and report."""
        unstarted = inspect.getgeneratorstate(self._events) == inspect.GEN_CREATED
        self._events.close()
        if unstarted:
            self._start.pump.close()
            self._on_done(self._builder, None)


def generate(start: StreamStart, builder: StreamBuilder, ping_interval_s: float,
             on_done: StreamDone) -> StreamBody:
    """The response body: translated events, keepalive comments and pings, then ``on_done``."""
    return StreamBody(_generate(start, builder, ping_interval_s, on_done), start, builder, on_done)


def _generate(start: StreamStart, builder: StreamBuilder, ping_interval_s: float,
              on_done: StreamDone) -> Generator[bytes, None, None]:
    pump, stream = start.pump, start.stream
    translator = stream.translator(builder) if stream else None
    failure: LynkrError | None = None
    pending = start.first
    try:
        if stream is None and pending is None:
            yield sse.comment()
        while not builder.finished:
            got = pending or pump.get(_wait(builder, ping_interval_s))
            pending = None
            if got is None:
                yield b"".join(sse.encode(e) for e in builder.ping()) if builder.started else sse.comment()
                continue
            # Everything already queued goes out in one write: fewer syscalls under load.
            events: list[Event] = []
            while got is not None and not builder.finished:
                kind, value = got
                if kind == OPEN:
                    stream, translator = value, value.translator(builder)
                else:
                    produced, broke = _events_for(kind, value, builder, translator)
                    events += produced
                    failure = broke or failure
                got = pump.poll()
            pending = got
            if events:
                yield b"".join([sse.encode(e) for e in events])
    finally:
        pump.close()
        on_done(builder, failure)


def _wait(builder: StreamBuilder, ping_interval_s: float) -> float:
    return ping_interval_s if builder.started else min(ping_interval_s, PRE_START_COMMENT_INTERVAL_S)


def _events_for(kind: str, value: Any, builder: StreamBuilder,
                translator: Any) -> tuple[list[Event], LynkrError | None]:
    """The events for one queued item, and the failure it ended the stream with, if any."""
    if kind == ITEM:
        try:
            events = translator.feed(value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("upstream stream broke the protocol: %s", exc)
            error: LynkrError = UpstreamError(f"The upstream stream was malformed: {exc}")
            return builder.error(error.error_type, error.client_message), error
        # An error frame the upstream sent mid-stream (relayed, or translated from its own form):
        # it ends the stream as a failure, and may echo the credential the upstream was sent.
        frame = next((e for e in events if e.get("type") == "error"), None)
        if frame is None:
            return events, None
        frame["error"] = redact_value(frame.get("error"))
        return events, error_for_event(frame["error"])
    if kind == END:
        events = translator.close() if translator else []
        if builder.grammar.stopped:
            return events, None
        error = ConnectionBrokenError("The upstream stream ended before the message was complete.")
        return events + builder.error(error.error_type, error.client_message), error
    error = value
    return builder.error(error.error_type, error.client_message), error
