"""Budget and rate-limit counters on a real Redis (``.ci/run`` starts one), and the fallback."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from app.accounting.ratelimit import RedisCounters
from app.storage.db import db
from app.storage.models import UsageCounter
from tests.integration.conftest import REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def scope() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def counters() -> RedisCounters:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:  # the server must be there: a missing one is a failure
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/start-services.sh")
    return RedisCounters.from_url(REDIS_URL)


def test_take_adds_only_while_below_the_limit(counters: RedisCounters, scope: str) -> None:
    assert counters.take(scope, "day", 60, 100, 60) == (True, 60)
    assert counters.take(scope, "day", 60, 100, 60) == (True, 120)
    assert counters.take(scope, "day", 1, 100, 60) == (False, 120)
    counters.add(scope, "day", -30, 60)
    assert counters.take(scope, "day", 5, 100, 60) == (True, 95)
    ttl = redis.Redis.from_url(REDIS_URL).pttl(f"lynkr:ctr:{scope}:day")
    assert 0 < ttl <= 60_000


def test_concurrent_takes_from_two_clients_stop_at_the_limit(scope: str, counters: RedisCounters) -> None:
    clients = [counters, RedisCounters.from_url(REDIS_URL)]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda n: clients[n % 2].take(scope, "minute", 10, 100, 60), range(64)))
    assert sum(taken for taken, _ in results) == 10
    assert max(used for _, used in results) == 100


def test_redis_down_falls_back_to_the_database(app: Any, scope: str) -> None:
    down = RedisCounters(redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2, socket_timeout=0.2))
    with app.app_context():
        assert down.take(scope, "day", 7, 100, 60) == (True, 7)
        down.add(scope, "day", 3, 60)
        with db.connection_context():
            assert UsageCounter.get((UsageCounter.scope == scope) & (UsageCounter.period == "day")).used == 10


def test_every_redis_tier_shares_one_client_per_url() -> None:
    from app.cache.redis import RedisTier
    from app.resilience.redis import RedisBreakerStore
    from app.resilience.shm import SharedMemoryStore

    counters = RedisCounters.from_url(REDIS_URL)
    tier = RedisTier.from_url(REDIS_URL, ttl_ms=1000, timer=lambda: 0.0)
    breakers = RedisBreakerStore.from_url(REDIS_URL, SharedMemoryStore())
    assert counters._client is tier.client is breakers.client


def test_a_redis_outage_is_warned_once_and_skipped_for_a_while(app: Any, scope: str,
                                                               log_records: Any) -> None:
    warnings = log_records("lynkr.ratelimit")
    down = RedisCounters(redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2, socket_timeout=0.2))
    with app.app_context():
        for _ in range(3):
            assert down.take(scope, "day", 1, 100, 60)[0] is True
    assert [r.event for r in warnings] == ["counters_redis_down"]
    assert "1 failed call(s)" in warnings[0].getMessage()
