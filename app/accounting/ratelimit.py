"""Shared counters for budgets and rate limits, correct across workers and instances.

A counter is one integer per ``(scope, period)`` — tokens, micro-USD or requests. ``take``
adds to it in one atomic step **only while it is below the limit**, so concurrent requests
can never all slip past a nearly spent limit: once one request has taken the counter over,
every later one is refused, and the most a limit is exceeded by is what one request used.

A rate limit is a **sliding window** instead: ``take_window`` keeps each amount taken with the
time it was taken and admits a new one only if everything taken in the last 60 s plus it stays
within the limit, so no 60 s — wherever it starts — holds more than the limit (a calendar minute
would admit twice the limit across its boundary). The one exception is a single amount larger
than the whole limit, admitted alone into an empty window rather than refused forever.

* :class:`DbCounters` (default): insert-or-ignore the row, then one conditional
  ``UPDATE usage_counters SET used = used + ? WHERE scope = ? AND period = ? AND used < ?``;
  the row count says whether it was taken. Same on SQLite and PostgreSQL. A window is the rows
  of ``rate_window_entries``, summed and added to under a write lock on the scope's
  ``usage_counters`` row (period ``window``).
* :class:`RedisCounters` (``REDIS_URL``): the same test-and-add as a Lua script, keys expiring
  after their period; a window is a sorted set (member ``entry:amount``, score the time taken)
  read and added to by one Lua script. A Redis failure falls back to the database counters.

Window times are the caller's clock (epoch seconds): instances must keep their clocks in step
(NTP), as they already must for daily and monthly budgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from app.logging import get_logger
from app.storage.db import db
from app.storage.models import RateWindowEntry, UsageCounter
from app.storage.redis_health import RedisHealth, connect

log = get_logger("ratelimit")
WINDOW_S = 60.0
_WINDOW_PERIOD = "window"  # the usage_counters row whose lock serialises a window's takes


@dataclass(frozen=True)
class WindowTake:
    """The outcome of :meth:`Counters.take_window`."""

    taken: bool
    used: int  # in the window: after the take, or before a refusal
    retry_after_s: float = 0.0  # on a refusal: until enough of the oldest amounts leave the window


def fits(used: int, amount: int, limit: int) -> bool:
    """Whether ``amount`` may join a window holding ``used`` under ``limit``."""
    return used == 0 or used + amount <= limit


def refused(entries: list[tuple[float, int]], amount: int, limit: int, now: float) -> WindowTake:
    """The refusal for ``amount`` in a window of ``(taken_at, amount)`` entries, oldest first."""
    used = left = sum(taken for _, taken in entries)
    for taken_at, taken in entries:
        left -= taken
        if fits(left, amount, limit):
            return WindowTake(False, used, taken_at + WINDOW_S - now)
    return WindowTake(False, used, WINDOW_S)


class Counters(Protocol):
    """Atomic, shared counters."""

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        """Add ``amount`` if the counter is below ``limit``; (taken, count before a refusal or after the add)."""

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        """Add ``delta`` (negative to give back) unconditionally."""

    def take_window(self, scope: str, entry: str, amount: int, limit: int, now: float) -> WindowTake:
        """Add ``amount`` as ``entry`` at ``now`` if the last 60 s of ``scope`` leave room for it."""

    def adjust_window(self, scope: str, entry: str, old: int, new: int) -> None:
        """Change ``entry`` from ``old`` to ``new`` (0 removes it), keeping when it was taken."""


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

    def take_window(self, scope: str, entry: str, amount: int, limit: int, now: float) -> WindowTake:
        lock = (UsageCounter.scope == scope) & (UsageCounter.period == _WINDOW_PERIOD)
        mine = RateWindowEntry.scope == scope
        with _connected():
            self._ensure(scope, _WINDOW_PERIOD)
            with db.atomic():
                # A write to the scope's row first: the takes of one window run one at a time.
                UsageCounter.update(used=UsageCounter.used).where(lock).execute()
                RateWindowEntry.delete().where(mine & (RateWindowEntry.taken_at <= now - WINDOW_S)).execute()
                entries = [(float(row.taken_at), int(row.amount)) for row in RateWindowEntry.select(
                    RateWindowEntry.taken_at, RateWindowEntry.amount).where(mine).order_by(RateWindowEntry.taken_at)]
                used = sum(taken for _, taken in entries)
                if not fits(used, amount, limit):
                    return refused(entries, amount, limit, now)
                RateWindowEntry.insert(scope=scope, entry=entry, taken_at=now, amount=amount).execute()
        return WindowTake(True, used + amount)

    def adjust_window(self, scope: str, entry: str, old: int, new: int) -> None:
        where = (RateWindowEntry.scope == scope) & (RateWindowEntry.entry == entry)
        with _connected():
            if new:
                RateWindowEntry.update(amount=new).where(where).execute()
            else:
                RateWindowEntry.delete().where(where).execute()

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

# KEYS[1]: the window (members "entry:amount", scores when taken); ARGV: now, window s, entry, amount, limit.
# Returns {taken, used, seconds to wait as a string} (Lua numbers would reach Python truncated).
_TAKE_WINDOW = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local amount, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local function taken(i) return tonumber(string.match(entries[i], ':(%d+)$')) end
local used = 0
for i = 1, #entries, 2 do used = used + taken(i) end
if used == 0 or used + amount <= limit then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3] .. ':' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return {1, used + amount, '0'}
end
local left = used
for i = 1, #entries, 2 do
  left = left - taken(i)
  if left == 0 or left + amount <= limit then
    return {0, used, tostring(tonumber(entries[i + 1]) + window - now)}
  end
end
return {0, used, tostring(window)}
"""

# KEYS[1]: the window; ARGV: the old member, the new member, the new amount (0: remove only).
_ADJUST_WINDOW = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('ZADD', KEYS[1], at, ARGV[2]) end
return 1
"""


class RedisCounters:
    """Counters in Redis (one key per scope and period, expiring after ``ttl_s``)."""

    def __init__(self, client: Any, fallback: Counters | None = None, prefix: str = "lynkr:ctr:") -> None:
        self._client = client
        self._take = client.register_script(_TAKE)
        self._take_window = client.register_script(_TAKE_WINDOW)
        self._adjust_window = client.register_script(_ADJUST_WINDOW)
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

    def take_window(self, scope: str, entry: str, amount: int, limit: int, now: float) -> WindowTake:
        def take() -> WindowTake:
            taken, used, wait = self._take_window(keys=[self._key(scope, _WINDOW_PERIOD)],
                                                  args=[repr(now), WINDOW_S, entry, amount, limit])
            return WindowTake(bool(taken), int(used), float(wait))

        return self.health.call(take, lambda: self._fallback.take_window(scope, entry, amount, limit, now))

    def adjust_window(self, scope: str, entry: str, old: int, new: int) -> None:
        def adjust() -> None:
            self._adjust_window(keys=[self._key(scope, _WINDOW_PERIOD)], args=[f"{entry}:{old}", f"{entry}:{new}", new])

        self.health.call(adjust, lambda: self._fallback.adjust_window(scope, entry, old, new))

    def _key(self, scope: str, period: str) -> str:
        return f"{self._prefix}{scope}:{period}"


def make_counters(redis_url: str) -> Counters:
    """Redis counters when ``REDIS_URL`` is set, else the database's."""
    return RedisCounters.from_url(redis_url) if redis_url else DbCounters()
