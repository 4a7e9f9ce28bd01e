"""Breaker records in Redis, shared by every instance that points at one (``REDIS_URL``).

An update is an optimistic compare-and-set: ``GET`` the record, run the pure transition in
Python, then a Lua script writes the new record only if the key still holds the bytes that were
read; if another worker or instance got there first, read again and re-run the transition. A
transition that changes nothing (most calls: ``allow`` while CLOSED, a success while healthy)
costs one ``GET`` and no write. The same CAS would be possible with ``WATCH``/``MULTI``/``EXEC``,
but that pins a pooled connection per update and costs an extra round trip, while the script
is one stateless ``EVALSHA``. The policy itself stays in :mod:`app.resilience.breaker` for all
stores, rather than a second copy in Lua that could drift from it. A failed CAS means another
update succeeded, so the store as a whole always makes progress.

Keys are ``lynkr:breaker:<provider>``, JSON, and expire ``ttl_s`` after their last change, so
the state of a provider nobody uses any more goes away; the TTL is far longer than the recovery
timeout, so an OPEN record always turns HALF_OPEN (one probe) rather than vanishing into CLOSED.
Times come from each instance's wall clock (:class:`~app.resilience.breaker.CircuitBreaker`),
so instances need synchronised clocks (NTP); a skew of a second moves a recovery by a second.

Redis is never a dependency: every call has short socket timeouts and no retries, and on any
Redis error the update or read goes to the ``local`` store instead (the instance's shared
memory), so requests never fail for it; :class:`~app.storage.redis_health.RedisHealth` skips Redis for
a while and logs the outage. While it lasts, each instance's
breakers are its own; when Redis is back, its records are used again and the local ones are
left behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from app.logging import get_logger
from app.resilience.breaker import BreakerRecord, BreakerState, BreakerStore, Change
from app.storage.redis_health import RedisHealth, connect

T = TypeVar("T")
KEY_PREFIX = "lynkr:breaker:"
MIN_TTL_S = 3600.0

# KEYS[1]: the record; ARGV: the bytes read ('' when there was no key), the new record, TTL in ms.
_COMPARE_AND_SET = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisBreakerStore:
    """A :class:`~app.resilience.breaker.BreakerStore` in Redis, falling back to ``local``."""

    def __init__(self, client: Any, local: BreakerStore, *, ttl_s: float = MIN_TTL_S,
                 prefix: str = KEY_PREFIX, timer: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.local = local
        self.prefix = prefix
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._cas = client.register_script(_COMPARE_AND_SET)
        self.health = RedisHealth("circuit breakers", "using this instance's own breaker state", "breaker",
                                  get_logger("resilience"), timer)

    @classmethod
    def from_url(cls, url: str, local: BreakerStore, *, ttl_s: float = MIN_TTL_S) -> RedisBreakerStore:
        """A store on ``url`` (``redis://…``); connects lazily, so an absent server is no error."""
        return cls(connect(url), local, ttl_s=ttl_s)

    def update(self, name: str, change: Change[T]) -> T:
        """Apply ``change`` to the record of ``name`` by compare-and-set (locally if Redis fails)."""
        return self.health.call(lambda: self._update(self.prefix + name, change),
                                lambda: self.local.update(name, change))

    def read(self, name: str) -> BreakerRecord:
        """The record of ``name`` in Redis (locally if Redis fails), CLOSED when there is none."""
        return self.health.call(lambda: _decode(self.client.get(self.prefix + name)),
                                lambda: self.local.read(name))

    def _update(self, key: str, change: Change[T]) -> T:
        while True:
            raw = self.client.get(key)
            record = _decode(raw)
            new, result = change(record)
            if new == record or self._cas(keys=[key], args=[raw or b"", _encode(new), self._ttl_ms]):
                return result


def _encode(record: BreakerRecord) -> str:
    return json.dumps(asdict(record), separators=(",", ":"))


def _decode(raw: bytes | None) -> BreakerRecord:
    """The record stored as ``raw``; a fresh one when there is none or it is unreadable."""
    if raw is None:
        return BreakerRecord()
    try:
        data = json.loads(raw)
        return BreakerRecord(**{**data, "state": BreakerState(data["state"])})
    except (ValueError, TypeError, KeyError):
        return BreakerRecord()


def breaker_store_for(redis_url: str, local: BreakerStore, recovery_timeout_ms: int) -> BreakerStore:
    """A Redis store over ``local`` when ``REDIS_URL`` is set, else ``local`` itself.

    Records live ten recovery timeouts after their last change, and at least an hour.
    """
    if not redis_url:
        return local
    return RedisBreakerStore.from_url(redis_url, local, ttl_s=max(MIN_TTL_S, 10 * recovery_timeout_ms / 1000))
