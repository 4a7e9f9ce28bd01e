"""The prompt cache's Redis tier on a real server (``.ci/run`` starts one; see scripts/start-services.sh).

A missing server is a failure, not a skip: CI must not pass with the shared tier untested.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from app.cache.prompt import PromptCache
from app.cache.redis import KEY_PREFIX, RedisTier
from tests.integration.conftest import REDIS_URL, closed_url

pytestmark = pytest.mark.redis
TTL_MS = 300_000


def make_message(text: str = "Shared answer.") -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 3}}


def make_request() -> dict[str, Any]:
    # A unique prompt per test, so runs never see each other's entries.
    return {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": f"Say hello ({uuid.uuid4()})"}]}


def make_cache(url: str = REDIS_URL, ttl_ms: int = TTL_MS) -> PromptCache:
    tier = RedisTier.from_url(url, ttl_ms=ttl_ms, timer=time.monotonic)
    return PromptCache(ttl_ms=ttl_ms, redis_tier=tier)


class Server:
    """A direct client on the test Redis that deletes the entries a test touched."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.keys: list[str] = []

    def entry(self, key: str) -> str:
        """The Redis name of cache key ``key``, removed after the test."""
        self.keys.append(KEY_PREFIX + key)
        return KEY_PREFIX + key


@pytest.fixture
def server(server: redis.Redis) -> Iterator[Server]:
    """The test Redis (tests/integration/conftest.py's ``server``, wrapped), cleaned of the entries a test touched."""
    found = Server(server)
    yield found
    if found.keys:
        server.delete(*found.keys)


def test_an_answer_stored_by_one_instance_is_a_hit_on_another(server: Server) -> None:
    first, second = make_cache(), make_cache()
    key = first.key(make_request(), "databricks", "databricks-claude-sonnet-4-5")
    entry = server.entry(key)
    assert second.get(key) is None
    assert first.put(key, make_message()) is True
    assert second.get(key) == make_message()
    assert 0 < server.client.pttl(entry) <= TTL_MS
    server.client.delete(entry)
    assert second.get(key) == make_message()  # now served from the second's own local tier
    first.close()
    second.close()


def test_an_entry_expires_in_redis_with_the_ttl(server: Server) -> None:
    first, second = make_cache(ttl_ms=300), make_cache(ttl_ms=300)
    key = first.key(make_request(), "databricks", "m")
    entry = server.entry(key)
    first.put(key, make_message())
    assert server.client.exists(entry) == 1
    time.sleep(0.5)
    assert server.client.exists(entry) == 0
    assert second.get(key) is None


def test_answers_that_must_not_be_cached_never_reach_redis(server: Server) -> None:
    cache = make_cache()
    key = cache.key(make_request(), "databricks", "m")
    entry = server.entry(key)
    assert cache.put(key, {**make_message(), "stop_reason": "max_tokens"}) is False
    assert server.client.exists(entry) == 0


def test_redis_down_means_the_local_tier_only_with_one_warning(
        log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    cache_log = log_records("lynkr.cache")
    url = closed_url()
    first, second = make_cache(url), make_cache(url)
    key = first.key(make_request(), "databricks", "m")
    started = time.monotonic()
    assert first.put(key, make_message()) is True
    assert first.get(key) == make_message()
    assert second.get(key) is None
    assert second.put(key, make_message("Second's own.")) is True
    assert second.get(key) == make_message("Second's own.")
    assert time.monotonic() - started < 2
    warnings = [r for r in cache_log if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per instance (each is its own tier), never one per call
    assert all("Redis is unavailable" in r.getMessage() for r in warnings)
