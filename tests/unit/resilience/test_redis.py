"""Breaker records in Redis: compare-and-set updates, expiry, unreadable records, and the local fallback."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from typing import Any

import pytest
import redis

from app.resilience.breaker import BreakerRecord, BreakerState, InProcessStore
from app.resilience.redis import MIN_TTL_S, RedisBreakerStore, breaker_store_for
from app.storage.redis_health import connect
from tests.unit.conftest import REDIS_URL, closed_redis_url

PREFIX = "unit:breaker:"


@pytest.fixture
def name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def fail(record: BreakerRecord) -> tuple[BreakerRecord, int]:
    new = replace(record, failures=record.failures + 1)
    return new, new.failures


def test_without_redis_url_the_local_store_is_used_itself() -> None:
    local = InProcessStore()
    assert breaker_store_for("", local, 30_000) is local
    assert isinstance(breaker_store_for("redis://127.0.0.1:1/0", local, 30_000), RedisBreakerStore)


def test_redis_down_updates_and_reads_the_local_store(name: str) -> None:
    local = InProcessStore()
    store = RedisBreakerStore(connect(closed_redis_url()), local)
    assert store.update(name, fail) == 1
    assert store.update(name, fail) == 2
    assert store.read(name) == BreakerRecord(failures=2)
    assert local.read(name) == BreakerRecord(failures=2)


@pytest.mark.redis
class TestOnRedis:
    def store(self, ttl_s: float = MIN_TTL_S) -> RedisBreakerStore:
        return RedisBreakerStore(redis.Redis.from_url(REDIS_URL), InProcessStore(), ttl_s=ttl_s, prefix=PREFIX)

    def test_an_update_is_stored_as_json_with_its_ttl(self, redis_client: Any, name: str) -> None:
        store = self.store()
        assert store.read(name) == BreakerRecord()
        opened = BreakerRecord(BreakerState.OPEN, 5, 0, 100.5, 100.5, None)
        assert store.update(name, lambda old: (opened, "done")) == "done"
        assert json.loads(redis_client.get(PREFIX + name)) == {
            "state": "OPEN", "failures": 5, "successes": 0, "opened_at": 100.5, "last_failure_at": 100.5,
            "probe_started_at": None}
        assert MIN_TTL_S * 1000 - 5000 < redis_client.pttl(PREFIX + name) <= MIN_TTL_S * 1000
        assert self.store().read(name) == opened  # another instance reads it

    def test_a_change_that_changes_nothing_writes_nothing(self, redis_client: Any, name: str) -> None:
        assert self.store().update(name, lambda old: (old, "same")) == "same"
        assert redis_client.exists(PREFIX + name) == 0

    def test_concurrent_updates_from_two_instances_are_all_counted(self, name: str) -> None:
        stores = [self.store(), self.store()]

        def work(index: int) -> None:
            for _ in range(25):
                stores[index % 2].update(name, fail)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stores[0].read(name).failures == 200

    def test_an_unreadable_record_counts_as_closed_and_is_replaced(self, redis_client: Any, name: str) -> None:
        for junk in (b"not json", b'{"state":"BROKEN"}', b'{"failures":1}', b'[1]'):
            redis_client.set(PREFIX + name, junk)
            assert self.store().read(name) == BreakerRecord()
        assert self.store().update(name, fail) == 1
        assert json.loads(redis_client.get(PREFIX + name))["failures"] == 1

    def test_the_ttl_is_ten_recovery_timeouts_but_at_least_an_hour(self, redis_client: Any, name: str) -> None:
        long = breaker_store_for(REDIS_URL, InProcessStore(), 720_000)
        long.update(name, fail)
        assert 7_195_000 < redis_client.pttl("lynkr:breaker:" + name) <= 7_200_000
        short = breaker_store_for(REDIS_URL, InProcessStore(), 1_000)
        short.update(name + "s", fail)
        assert 3_595_000 < redis_client.pttl("lynkr:breaker:" + name + "s") <= 3_600_000
        redis_client.delete("lynkr:breaker:" + name, "lynkr:breaker:" + name + "s")
