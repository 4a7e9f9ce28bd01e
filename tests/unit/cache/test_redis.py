"""The prompt cache's Redis tier: entries with expiry, and a miss whenever Redis fails."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.cache.redis import KEY_PREFIX, RedisTier
from tests.unit.conftest import REDIS_URL, closed_redis_url


@pytest.fixture
def key() -> str:
    return f"unit-{uuid.uuid4().hex}"


@pytest.mark.redis
def test_a_stored_entry_comes_back_with_its_remaining_lifetime(redis_client: Any, key: str) -> None:
    tier = RedisTier.from_url(REDIS_URL, ttl_ms=60_000, timer=lambda: 0.0)
    assert tier.get(key) is None
    assert tier.put(key, b'{"ok":1}') is True
    value, remaining = tier.get(key)  # type: ignore[misc]
    assert value == b'{"ok":1}'
    assert 59.0 < remaining <= 60.0
    assert 0 < redis_client.pttl(KEY_PREFIX + key) <= 60_000


@pytest.mark.redis
def test_an_entry_without_expiry_counts_as_freshly_stored(redis_client: Any, key: str) -> None:
    redis_client.set(KEY_PREFIX + key, b"x")
    try:
        assert RedisTier.from_url(REDIS_URL, ttl_ms=5_000, timer=lambda: 0.0).get(key) == (b"x", 5.0)
    finally:
        redis_client.delete(KEY_PREFIX + key)


def test_redis_down_is_a_miss_and_a_refused_put(key: str) -> None:
    tier = RedisTier.from_url(closed_redis_url(), ttl_ms=1000, timer=lambda: 0.0)
    assert tier.put(key, b"x") is False
    assert tier.get(key) is None
    tier.close()
