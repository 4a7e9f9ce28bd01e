"""The streaming response: status first, keepalive while the source is silent, pings after.

The source (an upstream stream or the agent's turn) is opened by :mod:`app.sources`, which holds
the HTTP status until it answers (so 429/529 with ``retry-after`` and fallback keep their
meaning); then this generator reads it on the response thread. If it is silent past the commit
threshold the response commits 200 and sends SSE comments until ``message_start``, then ``ping``
events after each interval of silence. Items read together go out in one write. A later failure
becomes an SSE ``error`` event and is reported to ``on_done`` as a :class:`~app.errors.LynkrError`.
When the client goes away the generator is closed and the source let go at once; if it was still
opening, ``on_done`` waits for the open to complete, so its attempts are on the record.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from itertools import chain
from typing import Any

from app.anthropic import sse
from app.anthropic.events import Event, StreamBuilder
from app.errors import ConnectionBrokenError, LynkrError, UpstreamError, error_for_event
from app.logging import get_logger, redact_value
from app.providers.wire import READING, SILENT, Pause
from app.sources import StreamSource, StreamStart

log = get_logger("streaming")
PRE_START_COMMENT_INTERVAL_S = 5.0
# After the message ends, how long the upstream may stay silent before ending its body (so its
# connection can be pooled), and how many reads it may take, before it is closed instead.
DRAIN_S = 0.5
DRAIN_READS = 4
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
        """Close the body; if it never started, let the source go and report."""
        unstarted = inspect.getgeneratorstate(self._events) == inspect.GEN_CREATED
        self._events.close()
        if unstarted:
            self._start.end()
            self._start.after_open(partial(self._on_done, self._builder, None))


def generate(start: StreamStart, builder: StreamBuilder, ping_interval_s: float,
             on_done: StreamDone, clock: Callable[[], float] = time.monotonic) -> StreamBody:
    """The response body: translated events, keepalive comments and pings, then ``on_done``."""
    return StreamBody(_generate(start, builder, ping_interval_s, on_done, clock), start, builder, on_done)


def _generate(start: StreamStart, builder: StreamBuilder, ping_interval_s: float,
              on_done: StreamDone, clock: Callable[[], float]) -> Generator[bytes, None, None]:
    failure: LynkrError | None = None
    tick = min(ping_interval_s, PRE_START_COMMENT_INTERVAL_S)
    out: list[bytes] = []  # frames read but not yet written
    try:
        if start.opening is not None:
            yield sse.comment()
            opened = yield from _await(start.opening, tick)
            start.opened(opened)
        stream, items = start.stream, start.items
        assert stream is not None
        assert items is not None
        translator = stream.translator(builder)
        # A relay sends the upstream's own bytes for events that pass unchanged (most of a stream).
        framed: Callable[[Any], bytes | None] | None = getattr(translator, "frame", None)
        stream.pace(tick)
        # Silence is what the client hears, not what the upstream sends: bytes that make no event
        # (a tool call's input being written, an upstream's own comments) count as silence too.
        quiet_s, written_at = 0.0, clock()
        for item in chain(start.first, items):
            if isinstance(item, Pause):
                if out:
                    yield b"".join(out)
                    out, quiet_s, written_at = [], 0.0, clock()
                    continue
                quiet_s += tick if item is SILENT else 0.0
                due = ping_interval_s if builder.started else PRE_START_COMMENT_INTERVAL_S
                if quiet_s >= due or clock() - written_at >= due:
                    yield _encoded(builder.ping()) if builder.started else sse.comment()
                    quiet_s, written_at = 0.0, clock()
                continue
            produced, broke = _frames_for(item, builder, translator, framed)
            if produced:  # an item that makes no event is silence to the client
                out.append(produced)
            failure = broke or failure
            if builder.finished:
                break
        if not builder.finished:
            events, broke = _ended(builder, translator)
            out.append(_encoded(events))
            failure = broke or failure
        if out:
            yield b"".join(out)
            out = []
        if builder.grammar.stopped:
            stream.pace(DRAIN_S)
            with contextlib.suppress(LynkrError):  # the message is whole: what follows cannot fail it
                _drain(items)
    except Exception as exc:
        # What was read before the failure goes out first, then the error; a bug is an internal
        # error event, never a stream cut without one.
        if isinstance(exc, LynkrError):
            failure = exc
        else:
            log.exception("stream failed")
            failure = LynkrError("Internal server error")
        if not builder.finished:
            out.append(_encoded(builder.error(failure.error_type, failure.client_message)))
        if out:
            yield b"".join(out)
    finally:
        try:
            start.end()
        finally:
            start.after_open(partial(on_done, builder, failure))


def _drain(items: Iterator[Any]) -> None:
    """Read what the upstream sends after the message (its body's end), stopping at the first
    silence or after ``DRAIN_READS`` reads.

    Counted in reads, not wall time: under load a thread may wait longer for the GIL than for
    the bytes, and a drain cut short costs the connection (the next stream opens a new one).
    """
    reads = 0
    for item in items:
        if item is SILENT:
            return
        if item is READING:
            reads += 1
            if reads > DRAIN_READS:
                return


def _await(opening: Future[StreamSource], tick_s: float) -> Generator[bytes, None, StreamSource]:
    """The source once the helper has opened it, with a keepalive comment per tick meanwhile."""
    while True:
        try:
            return opening.result(timeout=tick_s)
        except FutureTimeout:
            yield sse.comment()


def _encoded(events: list[Event]) -> bytes:
    return b"".join([sse.encode(e) for e in events])


def _frames_for(item: Any, builder: StreamBuilder, translator: Any,
                framed: Callable[[Any], bytes | None] | None) -> tuple[bytes, LynkrError | None]:
    """The frames for one item, and the failure it ended the stream with, if any."""
    try:
        frame = framed(item) if framed is not None else None
        if frame is not None:
            return frame, None
        events: list[Event] = translator.feed(item)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("upstream stream broke the protocol: %s", exc)
        error: LynkrError = UpstreamError(f"The upstream stream was malformed: {exc}")
        return _encoded(builder.error(error.error_type, error.client_message)), error
    # An error frame the upstream sent mid-stream (relayed, or translated from its own form):
    # it ends the stream as a failure, and may echo the credential the upstream was sent.
    relayed_error = next((e for e in events if e.get("type") == "error"), None)
    if relayed_error is None:
        return _encoded(events), None
    relayed_error["error"] = redact_value(relayed_error.get("error"))
    return _encoded(events), error_for_event(relayed_error["error"])


def _ended(builder: StreamBuilder, translator: Any) -> tuple[list[Event], LynkrError | None]:
    """The source's items ended: the translator's last events, and an error unless the message stopped."""
    events: list[Event] = translator.close()
    if builder.grammar.stopped:
        return events, None
    error = ConnectionBrokenError("The upstream stream ended before the message was complete.")
    return events + builder.error(error.error_type, error.client_message), error
