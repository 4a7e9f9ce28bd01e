"""The one Redis client of a process, and whether an optional Redis tier is worth asking.

The prompt cache, the circuit breakers and the budget counters each use Redis as a shared tier
that may go away: :func:`connect` gives them one client per URL (short socket timeouts, no
retries) and :meth:`RedisHealth.call` falls back when it fails. After a failure the tier is
skipped for :data:`RETRY_AFTER_S` (an unreachable host must not cost every request a timeout):
that is a per-process circuit breaker, the ``circuitbreaker`` package's, opened by one failure
and half-open after the wait (the providers' breakers, shared by every worker and instance, are
:mod:`app.resilience.breaker`). The outage is logged once, then at most every
:data:`WARN_EVERY_S` with a count, and its end once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from circuitbreaker import STATE_OPEN, CircuitBreaker

from app.storage.extras import require

RETRY_AFTER_S = 5.0
WARN_EVERY_S = 60.0
SOCKET_TIMEOUT_S = 0.2
T = TypeVar("T")


@functools.cache
def connect(url: str) -> Any:
    """The process's client for ``url`` (``redis://…``); connects lazily, so an absent server is no
    error. redis-py is imported only here (~8 MB per worker), when ``REDIS_URL`` is set; without
    it, :class:`~app.storage.extras.MissingExtra` names the extra to install."""
    redis = require("redis", "redis", "REDIS_URL")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                                retry=Retry(NoBackoff(), 0))


class OutageBreaker(CircuitBreaker):
    """``circuitbreaker``'s breaker, opened by one failure, on an injectable clock (tests drive it)."""

    def __init__(self, timer: Callable[[], float], expected: tuple[type[BaseException], ...]) -> None:
        super().__init__(failure_threshold=1, recovery_timeout=RETRY_AFTER_S, expected_exception=expected)
        self.timer = timer
        self.expected = expected

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> Literal[False]:
        super().__exit__(exc_type, exc_value, traceback)
        if exc_type is not None and self._state == STATE_OPEN:
            self._opened = self.timer()
        return False

    @property
    def open_remaining(self) -> float:
        """Seconds the breaker stays open (on :attr:`timer`, not the package's own clock)."""
        return float(self._opened + self._recovery_timeout - self.timer())


class RedisHealth:
    """Failure bookkeeping for one Redis tier (``what`` names it in ``log``, ``event`` prefixes its events)."""

    def __init__(self, what: str, fallback: str, event: str, log: logging.Logger,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.what, self.fallback, self.event, self.log = what, fallback, event, log
        self.timer = timer
        self._breaker: OutageBreaker | None = None
        self._lock = threading.Lock()
        self._next_warning = float("-inf")
        self._failures = 0
        self._down = False

    def call(self, action: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``action()`` against Redis, or ``fallback()`` when Redis is skipped or the call fails."""
        breaker = self._outage_breaker()
        if not breaker.opened:
            try:
                result: T = breaker.call(action)
            except breaker.expected as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        return fallback()

    def _outage_breaker(self) -> OutageBreaker:
        if self._breaker is None:
            import redis  # only once a Redis tier is in use

            self._breaker = OutageBreaker(self.timer, (redis.RedisError, OSError))
        return self._breaker

    def failed(self, exc: BaseException) -> None:
        """Note a failed call: warn now and then (the breaker skips Redis for a while)."""
        now = self.timer()
        with self._lock:
            self._down = True
            self._failures += 1
            if now < self._next_warning:
                return
            self._next_warning = now + WARN_EVERY_S
            failures, self._failures = self._failures, 0
        self.log.warning("%s: Redis is unavailable (%s: %s); %s (%d failed call(s) since the last warning)",
                    self.what, type(exc).__name__, exc, self.fallback, failures,
                    extra={"event": f"{self.event}_redis_down"})

    def succeeded(self) -> None:
        """Note a call that worked; logs the end of an outage once."""
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
            self._failures = 0
        if was_down:
            self.log.info("%s: Redis is reachable again", self.what, extra={"event": f"{self.event}_redis_up"})
