"""A bounded background writer for usage rows and transcripts.

Writing a usage row and new transcript turns costs a database round trip; doing it after the
response, on one thread per worker, keeps it off the request's latency. The queue is bounded
(when full, the request thread writes itself rather than drop data), flushed on shutdown, and
``flush()`` is the test hook that waits until everything queued is written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from app.db import db
from app.logging import get_logger

log = get_logger("recorder")
Job = Callable[[], object]


class Recorder:
    """Runs database write jobs in order on a background thread."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queue: queue.Queue[Job] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        """Queue ``job``; runs it inline when the queue is full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            _run(job)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job has run; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._work, name="lynkr-recorder", daemon=True)
                    self._thread.start()

    def _work(self) -> None:
        while True:
            _run(self._queue.get())


def _run(job: Job) -> None:
    try:
        with db.connection_context():
            job()
    except Exception:  # a failed write is logged; it must never take the worker down
        log.exception("background write failed")
