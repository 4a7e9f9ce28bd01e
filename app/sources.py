"""How a streamed answer begins: its source opens on a helper thread, then the response thread reads it.

A source is an open upstream stream, or the agent loop's turn. Opening may take long (an upstream
queueing the request before it answers), and meanwhile the client must hear something, so
:func:`begin` opens the source on a pooled helper thread and waits up to the commit threshold:
a failure before then keeps its real HTTP status (and fallback). From then on the response thread
reads the source itself: an open stream costs one blocked thread, not two threads handing every
event across a queue. A source hands out :class:`~app.providers.wire.Pause` markers between items,
so its reader can write in batches and ping during silence.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.anthropic.events import StreamBuilder
from app.errors import UpstreamError
from app.logging import REQUEST_ID
from app.providers.wire import READING, SILENT


class StreamSource(Protocol):
    """What a streamed answer reads: an open upstream stream, or the agent loop's turn."""

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
        """The source's items and pauses (read once), raising :class:`~app.errors.LynkrError` when it
        breaks."""

    @property
    def translator(self) -> Callable[[StreamBuilder], Any]:
        """Makes the translator of the items into Anthropic events on a builder
        (``feed(item)``, ``close()``)."""

    def pace(self, tick_s: float) -> None:
        """Hand out :data:`~app.providers.wire.SILENT` after each ``tick_s`` seconds of silence."""

    def close(self) -> None:
        """Abort from any thread: wake a read blocked on the source, stop a tool that waits."""

    def release(self) -> None:
        """Release what the source holds once reading has ended."""


class _Counter:
    """A thread-safe count of sources open in this process."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def change(self, delta: int) -> None:
        with self._lock:
            self.value += delta


_OPEN = _Counter()


def open_sources() -> int:
    """Stream sources open in this process (each holds an upstream connection)."""
    return _OPEN.value


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()
# An upper bound only: the pool starts a thread when no idle one is free, so it grows to the opens
# and tool calls in progress at once, which the worker's thread count (LYNKR_THREADS) bounds.
POOL_THREADS = 4096


def helpers() -> ThreadPoolExecutor:
    """This process's helper-thread pool (opens, and the agent's tools), made after fork."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="lynkr-helper"))
        return _pool[1]


def on_helper(call: Callable[[], Any]) -> Future[Any]:
    """Run ``call`` on a helper thread under the caller's request id."""
    request_id = REQUEST_ID.get()

    def run() -> Any:
        REQUEST_ID.set(request_id)
        try:
            return call()
        finally:
            REQUEST_ID.set(None)

    return helpers().submit(run)


@dataclass
class StreamStart:
    """A stream that has begun: its source (or the open still under way), and what was read of it
    before the response committed."""

    opening: Future[StreamSource] | None
    stream: StreamSource | None = None
    items: Iterator[Any] | None = None
    first: list[Any] = field(default_factory=list)
    _ended: bool = False

    def opened(self, stream: StreamSource) -> Iterator[Any]:
        """Take the source the helper opened; its items."""
        self.opening, self.stream = None, stream
        _OPEN.change(1)
        self.items = iter(stream.items)
        return self.items

    def end(self) -> None:
        """Stop reading and let go of the source (once); an open still under way is let go when it
        completes."""
        if self._ended:
            return
        self._ended = True
        if self.opening is not None:
            self.opening.add_done_callback(_let_go)
            return
        if self.stream is None:
            return
        try:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()
        finally:
            try:
                self.stream.release()
            finally:
                _OPEN.change(-1)


    def after_open(self, call: Callable[[], None]) -> None:
        """Run ``call`` now, or, while an open is still under way, once it has completed: what the
        open records (its attempts, retries, fallback) is in before the books on it close."""
        if self.opening is None:
            call()
            return
        request_id = REQUEST_ID.get()

        def settle(_: Future[StreamSource]) -> None:
            REQUEST_ID.set(request_id)
            try:
                call()
            finally:
                REQUEST_ID.set(None)

        self.opening.add_done_callback(settle)


def _let_go(opening: Future[StreamSource]) -> None:
    """A source that opened after its client went away: closed unread."""
    if opening.exception() is None:
        stream = opening.result()
        stream.close()
        stream.release()


def begin(opener: Callable[[], StreamSource], commit_after_s: float) -> StreamStart:
    """Open a source, waiting up to ``commit_after_s`` for it to open and hand out its first item.

    Raises the source's :class:`~app.errors.LynkrError` when it fails before the deadline, so the client gets
    its real status. Otherwise returns what there is: the source and its first item, the source
    alone (silent so far), or the open still under way.
    """
    deadline = time.monotonic() + commit_after_s
    opening: Future[StreamSource] = on_helper(opener)
    try:
        stream = opening.result(timeout=commit_after_s)
    except FutureTimeout:
        return StreamStart(opening)
    start = StreamStart(None)
    items = start.opened(stream)
    try:
        while (left := deadline - time.monotonic()) > 0:
            stream.pace(left)
            item = next(items)
            if item is SILENT:
                break
            if item is not READING:
                start.first.append(item)
                break
    except StopIteration:
        # Nothing at all before EOF: still before the first byte, so a real status (and fallback)
        # is possible rather than a 200 stream holding only an error.
        start.end()
        raise UpstreamError("The upstream closed the stream without sending anything.",
                            provider=stream.provider) from None
    except BaseException:
        start.end()
        raise
    return start

