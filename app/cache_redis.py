"""The prompt cache's optional second tier: a Redis shared by every instance.

Redis is an optimisation, never a dependency: every call has short socket timeouts and no
retries, and any failure is a miss. After a failure the tier is skipped for
:data:`RETRY_AFTER_S` (so an unreachable host does not cost each request a timeout), and the
outage is logged once, then at most once a minute while it lasts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.logging import get_logger

log = get_logger("cache")
KEY_PREFIX = "lynkr:prompt-cache:v1:"
SOCKET_TIMEOUT_S = 0.2
RETRY_AFTER_S = 5.0
WARN_EVERY_S = 60.0


class RedisTier:
    """Entries in Redis with ``PX`` expiry; every failure degrades to a miss."""

    def __init__(self, client: Any, *, ttl_ms: int, timer: Callable[[], float]) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.timer = timer
        self._lock = threading.Lock()
        self._skip_until = float("-inf")
        self._next_warning = float("-inf")
        self._failures = 0
        self._down = False

    @classmethod
    def from_url(cls, url: str, *, ttl_ms: int, timer: Callable[[], float]) -> RedisTier:
        """A tier on ``url`` (``redis://…``); connects lazily, so an absent server is no error."""
        client = redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S,
                                      socket_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        return cls(client, ttl_ms=ttl_ms, timer=timer)

    def get(self, key: str) -> tuple[bytes, float] | None:
        """The stored bytes and their remaining lifetime in seconds, or None."""
        if not self._available():
            return None
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(KEY_PREFIX + key)
            pipe.pttl(KEY_PREFIX + key)
            value, pttl = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._succeeded()
        if not isinstance(value, bytes) or not isinstance(pttl, int) or pttl == -2:
            return None
        # -1: no expiry (someone else wrote it); treat it as freshly stored.
        return value, (pttl if pttl > 0 else self.ttl_ms) / 1000

    def put(self, key: str, value: bytes) -> bool:
        """Store ``value`` for the TTL; whether Redis took it."""
        if not self._available():
            return False
        try:
            self.client.set(KEY_PREFIX + key, value, px=self.ttl_ms)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()

    # -- health -----------------------------------------------------------------------------

    def _available(self) -> bool:
        return self.timer() >= self._skip_until

    def _failed(self, exc: BaseException) -> None:
        now = self.timer()
        with self._lock:
            self._skip_until = now + RETRY_AFTER_S
            self._down = True
            self._failures += 1
            if now < self._next_warning:
                return
            self._next_warning = now + WARN_EVERY_S
            failures, self._failures = self._failures, 0
        log.warning("prompt cache: Redis is unavailable (%s: %s); serving from the local tier only "
                    "(%d failed call(s) since the last warning)", type(exc).__name__, exc, failures,
                    extra={"event": "prompt_cache_redis_down"})

    def _succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
            self._failures = 0
        if was_down:
            log.info("prompt cache: Redis is reachable again", extra={"event": "prompt_cache_redis_up"})
