"""The stream pump: a helper thread opens a stream source and reads its items into a queue.

A synchronous WSGI generator cannot wait on a socket and send pings at once, so the source
(an upstream stream, or the agent loop's turn) is opened and read by a pooled helper thread
(:class:`StreamPump`) into a bounded queue; the response generator waits on ``queue.get(timeout)``
and pings in between. :func:`begin` holds the HTTP status until the source answers, so a failure
before the first byte keeps its real status (and fallback). Every failure reaches the queue as a
:class:`~app.errors.LynkrError`: the provider boundary has already translated transport errors.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from app.anthropic.events import StreamBuilder
from app.errors import LynkrError, UpstreamError
from app.logging import REQUEST_ID, get_logger

log = get_logger("pump")
OPEN, ITEM, END, ERROR = "open", "item", "end", "error"
# After each of the first items the reader yields its core: the woken response thread then sends
# them at once. Otherwise, on a busy or single core, it runs only when this thread next blocks —
# after parsing everything that arrived in the same read — and the first delta waits for the
# whole burst (0.4 ms of the time to first delta in the benchmark).
EAGER_ITEMS = 4
_yield_core = getattr(os, "sched_yield", lambda: None)  # absent on Windows (``flask run`` there)


class StreamSource(Protocol):
    """What the pump reads: an open upstream stream, or the agent loop's turn."""

    @property
    def provider(self) -> str:
        """The provider answering."""

    @property
    def model(self) -> str:
        """The upstream model answering."""

    @property
    def headers(self) -> dict[str, str]:
        """Upstream headers the client may see."""

    @property
    def items(self) -> Iterator[Any]:
        """The source's items, raising :class:`LynkrError` when it breaks."""

    @property
    def translator(self) -> Callable[[StreamBuilder], Any]:
        """Makes the translator of the items into Anthropic events on a builder
        (``feed(item)``, ``close()``)."""

    def close(self) -> None:
        """Abort: wake a reader blocked on the source."""

    def release(self) -> None:
        """Release what the source holds once reading has ended."""


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
# An upper bound only: the pool starts a thread when no idle one is free, so it grows to the streams
# open at once, which the worker's thread count (LYNKR_THREADS) bounds.
POOL_THREADS = 4096


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

    def __init__(self, opener: Callable[[], StreamSource], maxsize: int = 256) -> None:
        self._opener = opener
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize)
        self._closed = threading.Event()
        self._stream: StreamSource | None = None
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
            if not self._closed.is_set():
                self._put(ERROR, exc)
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
    stream: StreamSource | None
    first: tuple[str, Any] | None


def begin(opener: Callable[[], StreamSource], commit_after_s: float) -> StreamStart:
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


