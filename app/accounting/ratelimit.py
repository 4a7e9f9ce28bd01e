"""Shared counters for budgets and rate limits, correct across workers and instances.

A counter is one integer per ``(scope, period)`` — tokens, micro-USD or requests. ``take``
adds to it in one atomic step **only while it is below the limit**, so concurrent requests
can never all slip past a nearly spent limit: once one request has taken the counter over,
every later one is refused, and the most a limit is exceeded by is what one request used.

* :class:`DbCounters` (default): insert-or-ignore the row, then one conditional
  ``UPDATE usage_counters SET used = used + ? WHERE scope = ? AND period = ? AND used < ?``;
  the row count says whether it was taken. Same on SQLite and PostgreSQL.
* :class:`RedisCounters` (``REDIS_URL``): the same test-and-add as a Lua script, keys expiring
  after their period; a Redis failure falls back to the database counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from app.logging import get_logger
from app.storage.db import db
from app.storage.models import UsageCounter
from app.storage.redis_health import RedisHealth, connect

log = get_logger("ratelimit")


class Counters(Protocol):
    """Atomic, shared counters."""

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        """Add ``amount`` if the counter is below ``limit``; (taken, count before a refusal or after the add)."""

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        """Add ``delta`` (negative to give back) unconditionally."""


class DbCounters:
    """Counters in the ``usage_counters`` table."""

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        where = (UsageCounter.scope == scope) & (UsageCounter.period == period)
        with _connected():
            self._ensure(scope, period)
            taken = UsageCounter.update(used=UsageCounter.used + amount).where(
                where & (UsageCounter.used < limit)).execute()
            used = UsageCounter.select(UsageCounter.used).where(where).scalar() or 0
        return bool(taken), int(used)

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        with _connected():
            self._ensure(scope, period)
            UsageCounter.update(used=UsageCounter.used + delta).where(
                (UsageCounter.scope == scope) & (UsageCounter.period == period)).execute()

    @staticmethod
    def _ensure(scope: str, period: str) -> None:
        UsageCounter.insert(scope=scope, period=period, used=0).on_conflict_ignore().execute()


@contextmanager
def _connected() -> Iterator[None]:
    """The request's connection when there is one; else (stream generators) one of our own."""
    if db.is_closed():
        with db.connection_context():
            yield
    else:
        yield


_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[2]) then return {0, used} end
local now = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, now}
"""


class RedisCounters:
    """Counters in Redis (one key per scope and period, expiring after ``ttl_s``)."""

    def __init__(self, client: Any, fallback: Counters | None = None, prefix: str = "lynkr:ctr:") -> None:
        self._client = client
        self._take = client.register_script(_TAKE)
        self._fallback = fallback or DbCounters()
        self._prefix = prefix
        self.health = RedisHealth("rate limits and budgets", "counting in the database", "counters", log)

    @classmethod
    def from_url(cls, url: str) -> RedisCounters:
        """Counters on the Redis at ``url`` with short socket timeouts."""
        return cls(connect(url))

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        def take() -> tuple[bool, int]:
            taken, used = self._take(keys=[self._key(scope, period)], args=[amount, limit, max(ttl_s, 1)])
            return bool(taken), int(used)

        return self.health.call(take, lambda: self._fallback.take(scope, period, amount, limit, ttl_s))

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        key = self._key(scope, period)

        def add() -> None:
            with self._client.pipeline() as pipe:
                pipe.incrby(key, delta).expire(key, max(ttl_s, 1)).execute()

        self.health.call(add, lambda: self._fallback.add(scope, period, delta, ttl_s))

    def _key(self, scope: str, period: str) -> str:
        return f"{self._prefix}{scope}:{period}"


def make_counters(redis_url: str) -> Counters:
    """Redis counters when ``REDIS_URL`` is set, else the database's."""
    return RedisCounters.from_url(redis_url) if redis_url else DbCounters()
