"""Resilience policy: retries, circuit breakers and load shedding, with no I/O of their own.

Everything here takes its clock, sleep-free delays and randomness as arguments, so the caller
(``providers/base.py``, the request hooks) owns the I/O and tests never sleep::

    RetryPolicy → RetryState         this module: when to retry, and how long to wait
    CircuitBreaker, BreakerRegistry  app.resilience.breaker: one breaker per provider
      └── BreakerStore               InProcessStore | SharedMemoryStore (app.resilience.shm)
                                     | RedisBreakerStore across instances (app.resilience.redis)
    LoadShedder                      app.resilience.shed: whether to refuse a new request

The providers' breakers are not the ``circuitbreaker`` package's: it has no success threshold,
no lock, and lets every caller through while half-open, and its state lives in one process while
ours must be shared by all gunicorn workers (and, with ``REDIS_URL``, all instances). That
per-process breaker is exactly right for skipping an unreachable Redis tier, where it is used
(:mod:`app.storage.redis_health`).

Retry rules: 429, 500, 502, 503, 504, 529 and connect errors are retried; any other 4xx never.
A stream is retried only before its first byte reached the client — after that a retry would
duplicate output, so the caller must stop asking once it has started writing. The decision reads
the upstream's own ``retry-after`` (seconds or an HTTP-date, fractions kept); a client is only
ever shown whole seconds (:func:`client_retry_after`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

from app.resilience.breaker import (
    BreakerConfig,
    BreakerRecord,
    BreakerRegistry,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    InProcessStore,
    UnknownBreakerError,
    counts_as_failure,
)
from app.resilience.shed import LoadShedder, queued_ms_from_header, rss_ratio
from app.resilience.shm import BREAKER_STORE, SharedMemoryStore

__all__ = [
    "BREAKER_STORE", "RETRYABLE_STATUSES", "BreakerConfig", "BreakerRecord", "BreakerRegistry",
    "BreakerState", "BreakerStore", "CircuitBreaker", "InProcessStore", "LoadShedder", "RetryPolicy",
    "RetryState", "SharedMemoryStore", "UnknownBreakerError", "client_retry_after", "counts_as_failure",
    "parse_retry_after", "queued_ms_from_header", "rss_ratio",
]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
CLIENT_RETRY_AFTER_CAP_S = 60


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``retry-after`` value (seconds or an HTTP-date, against the epoch
    time ``now``), at least 0; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        # An HTTP-date is GMT; a "-0000" zone parses as naive, which would read as local time.
        seconds = when.replace(tzinfo=when.tzinfo or UTC).timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def client_retry_after(seconds: float | None) -> str:
    """A ``retry-after`` for a client: whole seconds rounded up, between 1 and the cap; the cap
    when the wait is unknown (None)."""
    if seconds is None:
        return str(CLIENT_RETRY_AFTER_CAP_S)
    return str(min(max(math.ceil(seconds), 1), CLIENT_RETRY_AFTER_CAP_S))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, within a total budget per client request."""

    max_retries: int = 3
    initial_delay_ms: int = 1000
    max_delay_ms: int = 30000
    budget_ms: int = 20000
    rng: Callable[[], float] = field(default=random.random, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    # For HTTP-date retry-after values, which name a wall-clock instant.
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)

    def retryable(self, status: int | None, connect_error: bool) -> bool:
        """Whether the outcome may be retried at all (429/5xx/529 or a connect error)."""
        return connect_error or status in RETRYABLE_STATUSES

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry).

        A readable ``retry-after`` wins over the backoff; either way the wait is at most
        ``max_delay_ms``. The backoff is uniform in [0, min(max, initial * 2**attempt)].
        """
        cap = self.max_delay_ms / 1000
        asked = parse_retry_after(retry_after, self.wall_clock())
        if asked is not None:
            return min(asked, cap)
        ceiling = min(cap, self.initial_delay_ms / 1000 * 2 ** min(attempt, 64))
        return self.rng() * ceiling

    def start(self, *, has_fallback: bool = False) -> RetryState:
        """The retry state for one client request, starting its budget now."""
        return RetryState(self, has_fallback=has_fallback)


class RetryState:
    """Attempts made and time spent for one client request."""

    def __init__(self, policy: RetryPolicy, *, has_fallback: bool = False) -> None:
        self.policy = policy
        self.has_fallback = has_fallback
        self.attempts = 0
        self.started_at = policy.clock()
        # The wait the budget refused when it was the budget that ended the retries, else None.
        self.over_budget: float | None = None

    @property
    def spent_ms(self) -> float:
        """Milliseconds since the first attempt began, upstream time included."""
        return (self.policy.clock() - self.started_at) * 1000

    def should_retry(self, status: int | None, connect_error: bool, retry_after: str | None = None,
                     *, refused: bool = False) -> float | None:
        """Seconds to sleep before the next attempt, or None to give up (or fall back).

        None when the outcome is not retryable, when the connection was refused and a fallback
        provider exists (falling back at once beats waiting on a host that is down), when
        ``max_retries`` retries were made, or when the wait would take the request past its
        budget (then :attr:`over_budget` holds that wait). ``status`` is None when no response
        arrived; ``refused`` implies a connect error.
        """
        connect_error = connect_error or refused
        if not self.policy.retryable(status, connect_error):
            return None
        if (refused and self.has_fallback) or self.attempts >= self.policy.max_retries:
            return None
        wait = self.policy.delay(self.attempts, retry_after)
        if self.spent_ms + wait * 1000 > self.policy.budget_ms:
            self.over_budget = wait
            return None
        self.attempts += 1
        return wait
