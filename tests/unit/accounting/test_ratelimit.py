"""Shared counters: take only while below the limit, add unconditionally, in the database and in Redis."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from peewee import Database

from app.accounting.ratelimit import DbCounters, RedisCounters, make_counters
from app.storage.models import UsageCounter
from app.storage.redis_health import connect
from tests.unit.conftest import REDIS_URL, closed_redis_url


def used(scope: str, period: str) -> int:
    return UsageCounter.get((UsageCounter.scope == scope) & (UsageCounter.period == period)).used


def test_db_take_adds_while_below_the_limit_and_reports_the_count(sqlite_db: Database) -> None:
    counters = DbCounters()
    assert counters.take("key:a", "day", 60, 100, 60) == (True, 60)
    assert counters.take("key:a", "day", 60, 100, 60) == (True, 120)
    assert counters.take("key:a", "day", 1, 100, 60) == (False, 120)
    assert counters.take("key:a", "week", 1, 100, 60) == (True, 1)
    assert used("key:a", "day") == 120


def test_db_add_gives_back_and_creates_the_row(sqlite_db: Database) -> None:
    counters = DbCounters()
    counters.add("key:b", "day", 5, 60)
    counters.take("key:b", "day", 10, 100, 60)
    counters.add("key:b", "day", -12, 60)
    assert used("key:b", "day") == 3


def test_db_counters_open_their_own_connection_outside_a_request(unconnected_db: Database) -> None:
    assert DbCounters().take("key:c", "day", 1, 10, 60) == (True, 1)
    assert unconnected_db.is_closed()


def test_concurrent_db_takes_stop_at_the_limit(unconnected_db: Database) -> None:
    counters = DbCounters()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: counters.take("key:d", "minute", 10, 100, 60), range(30)))
    assert sum(taken for taken, _ in results) == 10


def test_make_counters_picks_redis_only_with_a_url() -> None:
    assert isinstance(make_counters(""), DbCounters)
    assert isinstance(make_counters("redis://127.0.0.1:1/0"), RedisCounters)


@pytest.fixture
def scope() -> str:
    return f"unit:{uuid.uuid4().hex}"


@pytest.mark.redis
def test_redis_take_and_add_with_expiry(redis_client: Any, scope: str) -> None:
    counters = RedisCounters(redis.Redis.from_url(REDIS_URL), prefix="unit:ctr:")
    assert counters.take(scope, "day", 60, 100, 30) == (True, 60)
    assert counters.take(scope, "day", 50, 100, 30) == (True, 110)
    assert counters.take(scope, "day", 1, 100, 30) == (False, 110)
    counters.add(scope, "day", -20, 30)
    assert counters.take(scope, "day", 5, 100, 0) == (True, 95)
    assert int(redis_client.get(f"unit:ctr:{scope}:day")) == 95
    assert 0 < redis_client.pttl(f"unit:ctr:{scope}:day") <= 1000  # ttl 0 is kept at least 1 s


def test_redis_down_counts_in_the_fallback(scope: str) -> None:
    fallback = RecordingCounters()
    down = RedisCounters(connect(closed_redis_url()), fallback=fallback)
    assert down.take(scope, "day", 7, 100, 60) == (True, 7)
    down.add(scope, "day", 3, 60)
    assert fallback.calls == [("take", scope, "day", 7, 100, 60), ("add", scope, "day", 3, 60)]


class RecordingCounters:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        self.calls.append(("take", scope, period, amount, limit, ttl_s))
        return True, amount

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        self.calls.append(("add", scope, period, delta, ttl_s))
