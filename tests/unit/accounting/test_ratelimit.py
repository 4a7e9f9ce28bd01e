"""Shared counters: take only while below the limit, add unconditionally, and sliding rate windows that
never hold more than the limit in any 60 s — in SQLite, PostgreSQL and Redis, on a fake clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from peewee import Database

from app.accounting.ratelimit import Counters, DbCounters, RedisCounters, WindowTake, make_counters
from app.config import Config
from app.storage.db import bind, close_all, db, make_database
from app.storage.migrate import migrate
from app.storage.models import RateWindowEntry, UsageCounter
from app.storage.redis_health import connect
from tests.unit.conftest import REDIS_URL, closed_redis_url

PG_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")
T0 = 1_796_644_799.8  # 2026-12-07T12:39:59.8Z: 0.2 s before a minute boundary


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
    assert down.take_window(scope, "e1", 2, 10, T0) == WindowTake(True, 2)
    down.adjust_window(scope, "e1", 2, 1)
    assert fallback.calls == [("take", scope, "day", 7, 100, 60), ("add", scope, "day", 3, 60),
                              ("take_window", scope, "e1", 2, 10, T0), ("adjust_window", scope, "e1", 2, 1)]


class RecordingCounters:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def take(self, scope: str, period: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        self.calls.append(("take", scope, period, amount, limit, ttl_s))
        return True, amount

    def add(self, scope: str, period: str, delta: int, ttl_s: int) -> None:
        self.calls.append(("add", scope, period, delta, ttl_s))

    def take_window(self, scope: str, entry: str, amount: int, limit: int, now: float) -> WindowTake:
        self.calls.append(("take_window", scope, entry, amount, limit, now))
        return WindowTake(True, amount)

    def adjust_window(self, scope: str, entry: str, old: int, new: int) -> None:
        self.calls.append(("adjust_window", scope, entry, old, new))


# -- sliding windows, the same tests on every backend ------------------------------------------------

@pytest.fixture
def postgres_db() -> Iterator[Database]:
    """The test PostgreSQL, migrated and bound, no connection held (each take opens its own)."""
    database = make_database(Config(database_url=PG_URL, threads=8))
    try:
        migrate(database)
    except Exception as exc:  # the server must be there: a missing one is a failure, not a skip
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable ({exc}); run scripts/start-services.sh")
    bind(database)
    yield database
    close_all()


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
])
def backend(request: pytest.FixtureRequest) -> Counters:
    """Counters on each backend, in a clean state for a scope of the test's own."""
    if request.param == "sqlite":
        request.getfixturevalue("unconnected_db")
        return DbCounters()
    if request.param == "postgres":
        request.getfixturevalue("postgres_db")
        return DbCounters()
    request.getfixturevalue("redis_client")
    return RedisCounters(redis.Redis.from_url(REDIS_URL), prefix="unit:win:")


def outcome(take: WindowTake) -> tuple[bool, int, float]:
    """A take with its wait rounded to the millisecond (float sums of epoch seconds are inexact)."""
    return take.taken, take.used, round(take.retry_after_s, 3)


def take_all(counters: Counters, scope: str, n: int, limit: int, at: float) -> list[bool]:
    return [counters.take_window(scope, uuid.uuid4().hex, 1, limit, at).taken for _ in range(n)]


def test_a_window_crossing_a_minute_boundary_never_holds_more_than_the_limit(backend: Counters, scope: str) -> None:
    # 50 requests 0.2 s before a minute boundary, 50 more 0.2 s after it: a calendar-minute counter
    # admitted all 100 within 0.4 s; the window admits the first 50 and none until they are 60 s old.
    assert take_all(backend, scope, 50, 50, T0) == [True] * 50
    assert take_all(backend, scope, 50, 50, T0 + 0.4) == [False] * 50
    assert outcome(backend.take_window(scope, "late", 1, 50, T0 + 59.9)) == (False, 50, 0.1)
    assert backend.take_window(scope, "next", 1, 50, T0 + 60.0) == WindowTake(True, 1)


def test_a_refusal_says_when_the_oldest_amounts_leave_the_window(backend: Counters, scope: str) -> None:
    assert backend.take_window(scope, "a", 300, 1000, T0).taken
    assert backend.take_window(scope, "b", 500, 1000, T0 + 10).taken
    assert backend.take_window(scope, "c", 200, 1000, T0 + 20) == WindowTake(True, 1000)
    refused = backend.take_window(scope, "d", 600, 1000, T0 + 30)  # room once a and b have left
    assert outcome(refused) == (False, 1000, 40.0)
    assert backend.take_window(scope, "d", 600, 1000, T0 + 70) == WindowTake(True, 800)


def test_adjusting_an_entry_keeps_when_it_was_taken(backend: Counters, scope: str) -> None:
    assert backend.take_window(scope, "a", 800, 1000, T0).taken
    backend.adjust_window(scope, "a", 800, 100)  # settled to the real usage: room for more
    assert backend.take_window(scope, "b", 900, 1000, T0 + 1) == WindowTake(True, 1000)
    backend.adjust_window(scope, "b", 900, 0)  # given back
    assert outcome(backend.take_window(scope, "c", 950, 1000, T0 + 2)) == (False, 100, 58.0)
    assert backend.take_window(scope, "c", 950, 1000, T0 + 60) == WindowTake(True, 950)  # a left at T0 + 60
    backend.adjust_window(scope, "gone", 5, 1)  # an entry already out of the window: nothing to change


def test_an_amount_over_the_whole_limit_is_admitted_alone(backend: Counters, scope: str) -> None:
    assert backend.take_window(scope, "big", 5000, 1000, T0) == WindowTake(True, 5000)
    assert outcome(backend.take_window(scope, "small", 1, 1000, T0 + 1)) == (False, 5000, 59.0)


def test_windows_are_kept_apart_by_scope(backend: Counters, scope: str) -> None:
    assert take_all(backend, scope, 2, 2, T0) == [True, True]
    assert take_all(backend, scope + ":other", 2, 2, T0) == [True, True]
    assert take_all(backend, scope, 1, 2, T0) == [False]


@pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres),
                                   pytest.param("redis", marks=pytest.mark.redis)])
def test_concurrent_window_takes_from_many_connections_stop_at_the_limit(
        store: str, request: pytest.FixtureRequest, scope: str) -> None:
    if store == "postgres":
        request.getfixturevalue("postgres_db")
        clients: list[Counters] = [DbCounters(), DbCounters()]
    else:
        request.getfixturevalue("redis_client")
        clients = [RedisCounters(redis.Redis.from_url(REDIS_URL), prefix="unit:win:") for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: clients[n % 2].take_window(scope, uuid.uuid4().hex, 1, 25, T0),
                                range(80)))
    assert sum(result.taken for result in results) == 25


def test_the_database_window_forgets_entries_older_than_a_minute(unconnected_db: Database, scope: str) -> None:
    counters = DbCounters()
    take_all(counters, scope, 3, 10, T0)
    take_all(counters, scope, 1, 10, T0 + 61)
    with db.connection_context():
        assert RateWindowEntry.select().where(RateWindowEntry.scope == scope).count() == 1


@pytest.mark.redis
def test_the_redis_window_is_one_expiring_sorted_set(redis_client: Any, scope: str) -> None:
    counters = RedisCounters(redis.Redis.from_url(REDIS_URL), prefix="unit:win:")
    counters.take_window(scope, "a", 7, 10, T0)
    assert redis_client.zrange(f"unit:win:{scope}:window", 0, -1, withscores=True) == [(b"a:7", T0)]
    assert 59_000 < redis_client.pttl(f"unit:win:{scope}:window") <= 60_000
