"""A bounded background writer for usage rows and transcripts.

Writing a usage row and new transcript turns costs a database round trip; doing it after the
response, on one thread per worker, keeps it off the request's latency; what arrives within
:data:`BATCH_WINDOW_S` is committed in one transaction. The queue is bounded in jobs and in the
bytes of request bodies its jobs hold on to (when either is full, the request thread writes
itself rather than drop data or let memory grow with a backlog), flushed on shutdown, and
``flush()`` is the test hook that waits until everything queued is written. When the worker has been quiet for
:data:`IDLE_TRIM_S`, the thread also hands freed heap memory back (:func:`app.host.trim_heap`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from peewee import SqliteDatabase

from app.host import trim_heap
from app.logging import get_logger
from app.storage.db import db

log = get_logger("recorder")
Job = Callable[[], object]
BATCH_MAX = 100  # jobs per transaction (it holds SQLite's write lock meanwhile)
BATCH_WINDOW_S = 0.05
MAX_PENDING_BYTES = 32 * 1024 * 1024  # request bodies held by queued jobs (parsed, several times this)
IDLE_TRIM_S = 5.0  # quiet time after which freed heap memory is given back


class Recorder:
    """Runs database write jobs in order on a background thread."""

    def __init__(self, maxsize: int = 10_000, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self._queue: queue.Queue[_Weighed | _Flushed] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0

    def submit(self, job: Job, holds_bytes: int = 0) -> None:
        """Queue ``job`` (which keeps ``holds_bytes`` of request body alive until it runs); runs it
        inline when the queue is full."""
        self._ensure_thread()
        with self._lock:
            room = self._pending_bytes + holds_bytes <= self._max_pending_bytes or self._pending_bytes == 0
            if room:
                self._pending_bytes += holds_bytes
        if room:
            try:
                self._queue.put_nowait(_Weighed(job, holds_bytes))
                return
            except queue.Full:
                self._release(holds_bytes)
        _run_batch([job])

    def _release(self, held_bytes: int) -> None:
        with self._lock:
            self._pending_bytes -= held_bytes

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job has run; False on timeout."""
        if self._thread is None:
            return True
        done = _Flushed()
        self._ensure_thread()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._work, name="lynkr-recorder", daemon=True)
                    self._thread.start()

    def _work(self) -> None:
        trimmed = True
        while True:
            try:
                first = self._queue.get(timeout=None if trimmed else IDLE_TRIM_S)
            except queue.Empty:
                trim_heap()  # the worker has been quiet: hand back what a burst left behind
                trimmed = True
                continue
            trimmed = False
            batch = [first]
            # Gather what arrives for a moment: a commit per batch rather than per request.
            deadline = time.monotonic() + BATCH_WINDOW_S
            while len(batch) < BATCH_MAX and not isinstance(batch[-1], _Flushed):
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            _run_batch([job for job in batch if not isinstance(job, _Flushed)])
            self._release(sum(job.holds_bytes for job in batch if isinstance(job, _Weighed)))
            for marker in batch:
                if isinstance(marker, _Flushed):
                    marker.set()  # only once everything before it is committed


def _run_batch(jobs: list[Job]) -> None:
    """Run queued jobs in one transaction, each in its own savepoint.

    One commit for everything queued costs far less than one per request under load; a job
    that fails rolls back alone and is logged, the others are kept.
    """
    if not jobs:
        return
    database = db.obj  # the transaction and its savepoints stay on one database, even if the proxy is rebound
    try:
        with database.connection_context(), _transaction(database):
            for job in jobs:
                try:
                    with database.atomic():
                        job()
                except Exception:  # a failed write is logged; it must never take the worker down
                    log.exception("background write failed")
    except Exception:
        log.exception("background writes failed")


class _Weighed:
    """A queued job and the bytes of request body it keeps alive until it has run."""

    __slots__ = ("holds_bytes", "job")

    def __init__(self, job: Job, holds_bytes: int) -> None:
        self.job, self.holds_bytes = job, holds_bytes

    def __call__(self) -> object:
        return self.job()


class _Flushed(threading.Event):
    """A queue marker :meth:`Recorder.flush` waits on; set after the batch it ends is committed."""


def _transaction(database: Any) -> Any:
    """One transaction for a batch; on SQLite it takes the write lock at once (``IMMEDIATE``).

    A deferred transaction that reads before it writes fails at once with "database is locked"
    when another worker committed in between (WAL's snapshot rule skips the busy timeout);
    an immediate one waits its turn instead.
    """
    if isinstance(database, SqliteDatabase):
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()
