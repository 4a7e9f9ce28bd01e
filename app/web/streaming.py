"""Streaming responses: status first, keepalive while the upstream is silent, pings after.

The upstream is opened and read by a helper thread (:class:`StreamPump`) into a bounded
queue, so the response generator can wait on ``queue.get(timeout)`` and ping in between — a
synchronous generator cannot wait on a socket and ping at once. The request thread holds the
HTTP status until the upstream answers (so 429/529 with ``retry-after`` and fallback keep their
meaning); if the upstream is silent past the commit threshold it commits 200 and sends SSE
comments until ``message_start``, then ``ping`` events after each interval of silence. A later
failure becomes an SSE ``error`` event. When the client goes away the generator is closed,
the upstream socket is shut down at once and the helper thread ends.
"""

from __future__ import annotations

import inspect
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import urllib3

from app.anthropic import sse
from app.anthropic.events import Event, StreamBuilder
from app.errors import LynkrError, UpstreamError
from app.logging import REQUEST_ID, get_logger
from app.providers.base import UpstreamStream

log = get_logger("streaming")
OPEN, ITEM, END, ERROR = "open", "item", "end", "error"
PRE_START_COMMENT_INTERVAL_S = 5.0
# After each of the first items the reader yields its core: the woken response thread then sends
# them at once. Otherwise, on a busy or single core, it runs only when this thread next blocks —
# after parsing everything that arrived in the same read — and the first delta waits for the
# whole burst (0.4 ms of the time to first delta in the benchmark).
EAGER_ITEMS = 4
_yield_core = getattr(os, "sched_yield", lambda: None)  # absent on Windows (``flask run`` there)


class _Counter:
    """A thread-safe count of upstream readers still running in this process."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def change(self, delta: int) -> None:
        with self._lock:
            self.value += delta


_RUNNING = _Counter()


def running_readers() -> int:
    """Upstream readers still running in this process (each holds an upstream connection)."""
    return _RUNNING.value


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()
POOL_THREADS = 256


def _executor() -> ThreadPoolExecutor:
    """This process's helper-thread pool, made after fork (threads do not survive ``fork``).

    Reusing threads saves starting one per stream; the pool only grows to the number of
    streams open at once, which the per-worker request cap bounds.
    """
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="lynkr-upstream"))
        return _pool[1]


class StreamPump:
    """Opens an upstream stream and reads its items on a helper thread."""

    def __init__(self, opener: Callable[[], UpstreamStream], maxsize: int = 256) -> None:
        self._opener = opener
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize)
        self._closed = threading.Event()
        self._stream: UpstreamStream | None = None
        self._request_id = REQUEST_ID.get()
        self.finished = threading.Event()

    def start(self) -> StreamPump:
        """Run the reader on a pooled helper thread."""
        _RUNNING.change(1)
        _executor().submit(self._run)
        return self

    def get(self, timeout: float) -> tuple[str, Any] | None:
        """The next ``(kind, value)``, or None after ``timeout`` seconds of silence."""
        try:
            return self._queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def poll(self) -> tuple[str, Any] | None:
        """The next ``(kind, value)`` if one is already queued."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop reading: shut the upstream socket so the helper wakes and ends."""
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _run(self) -> None:
        REQUEST_ID.set(self._request_id)
        try:
            self._stream = self._opener()
            if self._closed.is_set():
                self._stream.close()
                return
            self._put(OPEN, self._stream)
            for position, item in enumerate(self._stream.items):
                if not self._put(ITEM, item):
                    return
                if position < EAGER_ITEMS:
                    _yield_core()
            self._put(END, None)
        except LynkrError as exc:
            self._put(ERROR, exc)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self._closed.is_set():
                self._put(ERROR, UpstreamError(f"Upstream stream failed: {type(exc).__name__}."))
        except Exception:  # a bug must end the stream with an error, never leave it hanging
            log.exception("stream reader failed")
            self._put(ERROR, LynkrError("Internal server error"))
        finally:
            if self._stream is not None:
                self._stream.release()
            REQUEST_ID.set(None)
            _RUNNING.change(-1)
            self.finished.set()

    def _put(self, kind: str, value: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put((kind, value), timeout=0.25)
                return True
            except queue.Full:
                continue
        return False


@dataclass
class StreamStart:
    """What the request thread learned before committing the response."""

    pump: StreamPump
    stream: UpstreamStream | None
    first: tuple[str, Any] | None


def begin(opener: Callable[[], UpstreamStream], commit_after_s: float) -> StreamStart:
    """Open the upstream, waiting up to ``commit_after_s`` for it to answer.

    Raises the upstream's :class:`LynkrError` when it fails before the deadline, so the client
    gets its real status. Otherwise returns what arrived (possibly nothing yet).
    """
    pump = StreamPump(opener).start()
    deadline = time.monotonic() + commit_after_s
    stream = None
    while True:
        got = pump.get(deadline - time.monotonic())
        if got is None:
            return StreamStart(pump, stream, None)
        kind, value = got
        if kind == ERROR:
            pump.close()
            raise value
        if kind == END:
            # Nothing at all before EOF: still before the first byte, so a real status (and
            # fallback) is possible rather than a 200 stream holding only an error.
            pump.close()
            raise UpstreamError("The upstream closed the stream without sending anything.",
                                provider=stream.provider if stream else None)
        if kind != OPEN:
            return StreamStart(pump, stream, got)
        stream = value


class StreamBody:
    """The response iterable: cleans up even when the server closes it before the first byte.

    A generator closed before it started never runs its ``finally``; gunicorn does exactly that
    when the client is gone before the headers could be written.
    """

    def __init__(self, events: Generator[bytes, None, None], start: StreamStart, builder: StreamBuilder,
                 on_done: Callable[[StreamBuilder, LynkrError | None], None]) -> None:
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
             on_done: Callable[[StreamBuilder, LynkrError | None], None]) -> StreamBody:
    """The response body: translated events, keepalive comments and pings, then ``on_done``."""
    return StreamBody(_generate(start, builder, ping_interval_s, on_done), start, builder, on_done)


def _generate(start: StreamStart, builder: StreamBuilder, ping_interval_s: float,
              on_done: Callable[[StreamBuilder, LynkrError | None], None]) -> Generator[bytes, None, None]:
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
                    events += _events_for(kind, value, builder, translator)
                    failure = value if kind == ERROR else failure
                got = pump.poll()
            pending = got
            if events:
                yield b"".join([sse.encode(e) for e in events])
    finally:
        pump.close()
        on_done(builder, failure)


def _wait(builder: StreamBuilder, ping_interval_s: float) -> float:
    return ping_interval_s if builder.started else min(ping_interval_s, PRE_START_COMMENT_INTERVAL_S)


def _events_for(kind: str, value: Any, builder: StreamBuilder, translator: Any) -> list[Event]:
    if kind == ITEM:
        try:
            return translator.feed(value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("upstream stream broke the protocol: %s", exc)
            return builder.error("api_error", f"The upstream stream was malformed: {exc}")
    if kind == END:
        return translator.close() if translator else builder.error(
            "api_error", "The upstream closed the stream without answering.")
    error: LynkrError = value
    return builder.error(error.error_type, error.message)
