"""Circuit breakers: one per provider, state kept in a pluggable store.

The transitions are pure functions ``(record, now, config) -> (record, result)`` and a
:class:`BreakerStore` applies one atomically. That keeps the policy apart from where the state
lives: :class:`InProcessStore` (tests, single process), the shared-memory store every gunicorn
worker of an instance sees (:mod:`app.resilience.shm`), and with ``REDIS_URL`` a Redis store for
several instances (:mod:`app.resilience.redis`), which runs the same function in a
compare-and-set retry loop (so a transition must be pure: it may run more than once).

What counts as a failure is the caller's call, and only upstream failures may count: a 5xx, a
529, or no response at all (connect error, timeout, reset). The caller counts client requests,
not attempts: one failure for a request whose retries all failed. A client error (4xx) says nothing
about the upstream's health and must not be recorded as a failure; 429 is left to the retry
policy, because opening the breaker would turn a short rate limit into a full recovery timeout.
:func:`counts_as_failure` is that rule. A call that ends with no verdict (a 4xx, the client
went away) calls :meth:`CircuitBreaker.release` so a half-open probe slot is not held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class UnknownBreakerError(KeyError):
    """No breaker is registered under that name."""


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds shared by every breaker of a registry."""

    failure_threshold: int = 5
    success_threshold: int = 2
    recovery_timeout_ms: int = 60000
    # How long a half-open probe may stay unanswered before another is let through, so a
    # worker that died mid-probe cannot wedge HALF_OPEN. None: the recovery timeout.
    probe_timeout_ms: int | None = None

    @property
    def recovery_timeout_s(self) -> float:
        return self.recovery_timeout_ms / 1000

    @property
    def probe_timeout_s(self) -> float:
        ms = self.recovery_timeout_ms if self.probe_timeout_ms is None else self.probe_timeout_ms
        return ms / 1000


@dataclass(frozen=True)
class BreakerRecord:
    """The stored state of one breaker; times are the breaker clock's (epoch seconds)."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    last_failure_at: float | None = None
    probe_started_at: float | None = None


Change = Callable[[BreakerRecord], tuple[BreakerRecord, T]]
# A pure transition: (record, now, config) -> (new record, result).
Transition = Callable[[BreakerRecord, float, BreakerConfig], tuple[BreakerRecord, T]]


class BreakerStore(Protocol):
    """Where breaker records live; ``update`` must apply ``change`` atomically."""

    def update(self, name: str, change: Change[T]) -> T:
        """Apply ``change`` to the record of ``name`` atomically and return its result."""
        ...

    def read(self, name: str) -> BreakerRecord:
        """The current record of ``name`` (a fresh CLOSED record when there is none)."""
        ...


class InProcessStore:
    """Records in a dict: shared by the threads of one process only (tests, ``flask run``)."""

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def update(self, name: str, change: Change[T]) -> T:
        with self._lock:
            record, result = change(self._records.get(name, BreakerRecord()))
            self._records[name] = record
            return result

    def read(self, name: str) -> BreakerRecord:
        with self._lock:
            return self._records.get(name, BreakerRecord())


def counts_as_failure(status: int | None) -> bool:
    """Whether an outcome is an upstream failure: no response (None) or a 5xx/529."""
    return status is None or status >= 500


def _open(now: float, failures: int) -> BreakerRecord:
    return BreakerRecord(BreakerState.OPEN, failures=failures, opened_at=now, last_failure_at=now)


def _allow(record: BreakerRecord, now: float, config: BreakerConfig) -> tuple[BreakerRecord, bool]:
    if record.state is BreakerState.CLOSED:
        return record, True
    if record.state is BreakerState.OPEN:
        if record.opened_at is not None and now < record.opened_at + config.recovery_timeout_s:
            return record, False
        return replace(record, state=BreakerState.HALF_OPEN, successes=0, probe_started_at=now), True
    probe = record.probe_started_at
    if probe is not None and now < probe + config.probe_timeout_s:
        return record, False
    return replace(record, probe_started_at=now), True


def _last_resort(record: BreakerRecord, now: float, config: BreakerConfig) -> tuple[BreakerRecord, bool]:
    """:func:`_allow` for a request no other provider can take: an OPEN breaker turns HALF_OPEN at
    once instead of refusing until its timeout, so the request is the probe (one at a time)."""
    if record.state is BreakerState.OPEN:
        return replace(record, state=BreakerState.HALF_OPEN, successes=0, probe_started_at=now), True
    return _allow(record, now, config)


def _success(record: BreakerRecord, now: float, config: BreakerConfig) -> tuple[BreakerRecord, None]:
    if record.state is BreakerState.CLOSED:
        return replace(record, failures=0), None
    if record.state is BreakerState.OPEN:
        return record, None  # a late answer to a call let through before the breaker opened
    successes = record.successes + 1
    if successes >= config.success_threshold:
        return BreakerRecord(last_failure_at=record.last_failure_at), None
    return replace(record, successes=successes, probe_started_at=None), None


def _failure(record: BreakerRecord, now: float, config: BreakerConfig) -> tuple[BreakerRecord, None]:
    failures = record.failures + 1
    if record.state is BreakerState.HALF_OPEN:
        return _open(now, failures), None
    if record.state is BreakerState.OPEN:
        # A late failure of a call let through earlier: noted, but the timer is not re-armed.
        return replace(record, failures=failures, last_failure_at=now), None
    if failures >= config.failure_threshold:
        return _open(now, failures), None
    return replace(record, failures=failures, last_failure_at=now), None


def _release(record: BreakerRecord, now: float, config: BreakerConfig) -> tuple[BreakerRecord, None]:
    if record.state is BreakerState.HALF_OPEN:
        return replace(record, probe_started_at=None), None
    return record, None


class CircuitBreaker:
    """One provider's breaker: CLOSED → OPEN after ``failure_threshold`` consecutive failures,
    OPEN → HALF_OPEN after the recovery timeout with one probe at a time, HALF_OPEN → CLOSED
    after ``success_threshold`` consecutive successes or back to OPEN on a failure.
    """

    def __init__(self, name: str, config: BreakerConfig | None = None, *,
                 store: BreakerStore | None = None, clock: Clock = time.time) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self.store: BreakerStore = store if store is not None else InProcessStore()
        self.clock = clock

    def _apply(self, transition: Transition[T]) -> T:
        now = self.clock()
        return self.store.update(self.name, lambda record: transition(record, now, self.config))

    def allow(self, *, last_resort: bool = False) -> bool:
        """Whether a call may go upstream now; in HALF_OPEN only one probe at a time may.

        ``last_resort``: no other provider can take the request, so an OPEN breaker lets it
        through as its half-open probe rather than refusing it (a probe in flight still makes
        it wait).
        """
        return self._apply(_last_resort if last_resort else _allow)

    def record_success(self) -> None:
        """The upstream answered (for a stream: its status arrived), so it is healthy."""
        self._apply(_success)

    def record_failure(self) -> None:
        """The upstream failed (see :func:`counts_as_failure`); never call this for a 4xx."""
        self._apply(_failure)

    def release(self) -> None:
        """The call ended without a verdict on the upstream; frees a half-open probe slot."""
        self._apply(_release)

    def rejecting(self) -> bool:
        """Whether the breaker is OPEN and still inside its recovery timeout (read-only: no probe
        slot is taken), so routing can pass over the provider without contacting it at all."""
        record = self.store.read(self.name)
        return (record.state is BreakerState.OPEN and record.opened_at is not None
                and self.clock() < record.opened_at + self.config.recovery_timeout_s)

    def open_for_s(self) -> float:
        """Seconds an OPEN breaker still refuses calls (0 in any other state): a client's
        ``retry-after`` when it is refused."""
        record = self.store.read(self.name)
        if record.state is not BreakerState.OPEN or record.opened_at is None:
            return 0.0
        return max(0.0, record.opened_at + self.config.recovery_timeout_s - self.clock())

    @property
    def state(self) -> BreakerState:
        """The stored state (an OPEN breaker past its timeout turns HALF_OPEN on ``allow``)."""
        return self.store.read(self.name).state

    def snapshot(self) -> dict[str, Any]:
        """State, counters and times (epoch seconds or None) for /metrics/circuit-breakers."""
        record = self.store.read(self.name)
        next_attempt = None
        if record.state is BreakerState.OPEN and record.opened_at is not None:
            next_attempt = record.opened_at + self.config.recovery_timeout_s
        probe = record.probe_started_at
        return {
            "state": record.state.value,
            "failures": record.failures,
            "successes": record.successes,
            "last_failure_at": record.last_failure_at,
            "next_attempt_at": next_attempt,
            "probe_in_flight": probe is not None and self.clock() < probe + self.config.probe_timeout_s,
        }


class BreakerRegistry:
    """The breakers of the named providers, all backed by one store.

    Cheap to build: in production pass the shared store created before gunicorn forks
    (:data:`app.resilience.shm.BREAKER_STORE`) so every worker's registry sees the same state.
    """

    def __init__(self, names: Iterable[str], config: BreakerConfig | None = None, *,
                 store: BreakerStore, clock: Clock = time.time) -> None:
        self.config = config or BreakerConfig()
        self._breakers = {name: CircuitBreaker(name, self.config, store=store, clock=clock)
                          for name in names}

    def get(self, name: str) -> CircuitBreaker:
        """The breaker of ``name``; raises :class:`UnknownBreakerError` for an unknown name."""
        try:
            return self._breakers[name]
        except KeyError:
            raise UnknownBreakerError(name) from None

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._breakers)

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """Every breaker's :meth:`CircuitBreaker.snapshot`, by name."""
        return {name: breaker.snapshot() for name, breaker in self._breakers.items()}
