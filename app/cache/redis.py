"""The prompt cache's optional second tier: a Redis shared by every instance.

Redis is an optimisation, never a dependency: every call has short socket timeouts and no
retries, and any failure is a miss; :class:`~app.storage.redis_health.RedisHealth` skips the tier for a
while after a failure and logs the outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.logging import get_logger
from app.storage.redis_health import RedisHealth, connect

KEY_PREFIX = "lynkr:prompt-cache:v1:"


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
        return cls(connect(url), ttl_ms=ttl_ms, timer=timer)

    def get(self, key: str) -> tuple[bytes, float] | None:
        """The stored bytes and their remaining lifetime in seconds, or None."""
        def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(KEY_PREFIX + key)
            pipe.pttl(KEY_PREFIX + key)
            return pipe.execute()

        value, pttl = self.health.call(fetch, lambda: [None, -2])
        if not isinstance(value, bytes) or not isinstance(pttl, int) or pttl == -2:
            return None
        # -1: no expiry (someone else wrote it); treat it as freshly stored.
        return value, (pttl if pttl > 0 else self.ttl_ms) / 1000

    def put(self, key: str, value: bytes) -> bool:
        """Store ``value`` for the TTL; whether Redis took it."""
        return self.health.call(lambda: bool(self.client.set(KEY_PREFIX + key, value, px=self.ttl_ms)),
                                lambda: False)

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
