"""The prompt cache's optional second tier: a Redis shared by every instance.

Redis is an optimisation, never a dependency: every call has short socket timeouts and no
retries, and any failure is a miss; :class:`~app.redis_health.RedisHealth` skips the tier for a
while after a failure and logs the outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.logging import get_logger
from app.redis_health import RedisHealth

KEY_PREFIX = "lynkr:prompt-cache:v1:"
SOCKET_TIMEOUT_S = 0.2


class RedisTier:
    """Entries in Redis with ``PX`` expiry; every failure degrades to a miss."""

    def __init__(self, client: Any, *, ttl_ms: int, timer: Callable[[], float]) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.health = RedisHealth("prompt cache", "serving from the local tier only", "prompt_cache",
                                  get_logger("cache"), timer)

    @classmethod
    def from_url(cls, url: str, *, ttl_ms: int, timer: Callable[[], float]) -> RedisTier:
        """A tier on ``url`` (``redis://…``); connects lazily, so an absent server is no error."""
        client = redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S,
                                      socket_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        return cls(client, ttl_ms=ttl_ms, timer=timer)

    def get(self, key: str) -> tuple[bytes, float] | None:
        """The stored bytes and their remaining lifetime in seconds, or None."""
        if not self.health.available():
            return None
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(KEY_PREFIX + key)
            pipe.pttl(KEY_PREFIX + key)
            value, pttl = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self.health.failed(exc)
            return None
        self.health.succeeded()
        if not isinstance(value, bytes) or not isinstance(pttl, int) or pttl == -2:
            return None
        # -1: no expiry (someone else wrote it); treat it as freshly stored.
        return value, (pttl if pttl > 0 else self.ttl_ms) / 1000

    def put(self, key: str, value: bytes) -> bool:
        """Store ``value`` for the TTL; whether Redis took it."""
        if not self.health.available():
            return False
        try:
            self.client.set(KEY_PREFIX + key, value, px=self.ttl_ms)
        except (redis.RedisError, OSError) as exc:
            self.health.failed(exc)
            return False
        self.health.succeeded()
        return True

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
