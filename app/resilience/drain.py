"""Drain state shared by the gunicorn master and its workers, and the per-worker request cap.

``lynkr serve`` imports this module before gunicorn forks, so the anonymous shared mapping
below is inherited by every worker: when the master sets the flag on SIGTERM, every worker
sees it at once with a one-byte read and no system call.
"""

from __future__ import annotations

import mmap
import threading


class DrainFlag:
    """A one-byte flag in memory shared across ``fork``."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1)

    @property
    def draining(self) -> bool:
        """Whether shutdown has begun (readiness and new model requests answer 503)."""
        return self._memory[0] == 1

    def start(self) -> None:
        """Begin draining."""
        self._memory[0] = 1

    def clear(self) -> None:
        """Stop draining (used when a test reuses the flag)."""
        self._memory[0] = 0


DRAIN = DrainFlag()


class InflightLimiter:
    """Caps model requests in flight in one worker so health checks always find a thread.

    A request that finds every slot taken waits up to ``wait_s`` for one: under a burst of
    short requests a slot frees within milliseconds, while minutes-long streams filling the
    worker still get a prompt 529 instead of an unbounded wait.
    """

    def __init__(self, capacity: int, wait_s: float = 0.0) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self._count = 0
        self._freed = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Requests currently holding a slot."""
        return self._count

    def try_acquire(self, wait_s: float | None = None) -> bool:
        """Take a slot, waiting up to ``wait_s`` (default: the limiter's) for one to free."""
        with self._freed:
            if not self._freed.wait_for(lambda: self._count < self.capacity,
                                        self.wait_s if wait_s is None else wait_s):
                return False
            self._count += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._freed:
            self._count -= 1
            self._freed.notify()

    def slot(self, wait_s: float | None = None) -> Slot | None:
        """A held slot that gives itself back exactly once, or None when none freed in time."""
        return Slot(self) if self.try_acquire(wait_s) else None


class Slot:
    """One request's hold on an :class:`InflightLimiter`; releasing twice is harmless."""

    def __init__(self, limiter: InflightLimiter) -> None:
        self._limiter = limiter
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the slot back (later calls do nothing)."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._limiter.release()
