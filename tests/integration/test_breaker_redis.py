"""Circuit breakers shared through a real Redis (``.ci/run`` starts one; see scripts/start-services.sh).

Two registries on one Redis stand for two instances; a missing server is a failure, not a skip.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import responses

from app import create_app
from app.resilience.redis import KEY_PREFIX, MIN_TTL_S, RedisBreakerStore, breaker_store_for
from app.resilience.retry import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker, InProcessStore
from tests.conftest import DATABRICKS_URL
from tests.fakes.clock import FakeClock
from tests.integration.conftest import REDIS_URL, closed_url
from tests.integration.test_messages_anthropic import make_message, make_request

pytestmark = pytest.mark.redis
START = 1_700_000_000.0
CONFIG = BreakerConfig(failure_threshold=5, success_threshold=2, recovery_timeout_ms=60_000)


@pytest.fixture
def name(server: redis.Redis) -> Iterator[str]:
    """A provider name of the test's own, so runs never see each other's records."""
    found = f"ollama-{uuid.uuid4().hex[:12]}"
    yield found
    server.delete(KEY_PREFIX + found)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def instances(server: redis.Redis, name: str, clock: FakeClock) -> Iterator[list[CircuitBreaker]]:
    """The breaker of ``name`` on two instances, each with its own store, client and local fallback."""
    stores = [RedisBreakerStore.from_url(REDIS_URL, InProcessStore()) for _ in range(2)]
    yield [BreakerRegistry([name], CONFIG, store=store, clock=clock).get(name) for store in stores]
    for store in stores:
        store.client.close()


def make_open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.config.failure_threshold):
        breaker.record_failure()


def test_failures_through_one_instance_open_the_breaker_for_the_other(
        instances: list[CircuitBreaker], server: redis.Redis, name: str) -> None:
    first, second = instances
    for _ in range(4):
        first.record_failure()
    assert second.state is BreakerState.CLOSED
    assert second.allow()
    second.record_failure()
    assert first.state is second.state is BreakerState.OPEN
    assert not first.allow()
    assert second.rejecting()
    assert second.snapshot()["failures"] == 5
    assert 0 < server.pttl(KEY_PREFIX + name) <= MIN_TTL_S * 1000


def test_half_open_lets_exactly_one_probe_through_across_instances(
        instances: list[CircuitBreaker], clock: FakeClock) -> None:
    make_open(instances[0])
    start = threading.Barrier(32)

    def probe(n: int) -> bool:
        start.wait()
        return instances[n % 2].allow()

    with ThreadPoolExecutor(32) as pool:
        for _ in range(5):  # several races: a lost update shows up in one of them
            clock.advance(60)
            assert sum(pool.map(probe, range(32))) == 1
            assert instances[0].state is instances[1].state is BreakerState.HALF_OPEN
            assert instances[1].snapshot()["probe_in_flight"] is True
            instances[0].record_failure()  # the probe failed: OPEN again for another timeout


def test_recovery_closes_the_breaker_for_both(instances: list[CircuitBreaker], clock: FakeClock) -> None:
    first, second = instances
    make_open(first)
    clock.advance(60)
    assert first.allow()
    assert not second.allow()
    first.record_success()
    assert second.allow()  # the first probe answered: the next one may come from anywhere
    second.record_success()
    assert first.state is second.state is BreakerState.CLOSED
    assert first.allow()
    assert second.allow()


def test_a_failed_probe_reopens_the_breaker_for_both(instances: list[CircuitBreaker], clock: FakeClock) -> None:
    first, second = instances
    make_open(second)
    clock.advance(60)
    assert first.allow()
    first.record_failure()
    assert second.state is BreakerState.OPEN
    assert not second.allow()
    assert second.snapshot()["next_attempt_at"] == START + 120


def test_concurrent_failures_from_both_instances_are_all_counted(
        server: redis.Redis, name: str, clock: FakeClock) -> None:
    stores = [RedisBreakerStore.from_url(REDIS_URL, InProcessStore()) for _ in range(2)]
    breakers = [CircuitBreaker(name, BreakerConfig(failure_threshold=1000), store=s, clock=clock) for s in stores]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: breakers[n % 2].record_failure(), range(200)))
    assert breakers[0].snapshot()["failures"] == 200  # no update lost to a concurrent one
    for store in stores:
        store.client.close()


def test_a_record_expires_with_its_ttl(server: redis.Redis, name: str, clock: FakeClock) -> None:
    store = RedisBreakerStore.from_url(REDIS_URL, InProcessStore(), ttl_s=0.3)
    breaker = CircuitBreaker(name, CONFIG, store=store, clock=clock)
    make_open(breaker)
    assert server.exists(KEY_PREFIX + name) == 1
    time.sleep(0.5)
    assert server.exists(KEY_PREFIX + name) == 0
    assert breaker.state is BreakerState.CLOSED
    store.client.close()


def test_an_unreadable_record_counts_as_closed(server: redis.Redis, name: str, clock: FakeClock) -> None:
    server.set(KEY_PREFIX + name, b"not json")
    store = RedisBreakerStore.from_url(REDIS_URL, InProcessStore())
    breaker = CircuitBreaker(name, CONFIG, store=store, clock=clock)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.snapshot()["failures"] == 1
    store.client.close()


def test_redis_down_falls_back_to_the_local_store_with_one_warning(
        clock: FakeClock, log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    breaker_log = log_records("lynkr.resilience")
    local = InProcessStore()
    store = RedisBreakerStore.from_url(closed_url(), local)
    breaker = CircuitBreaker("ollama", CONFIG, store=store, clock=clock)
    started = time.monotonic()
    assert breaker.allow()
    make_open(breaker)
    assert not breaker.allow()
    assert local.read("ollama").state is BreakerState.OPEN
    assert breaker.snapshot()["state"] == "OPEN"
    assert time.monotonic() - started < 2
    warnings = [r for r in breaker_log if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage, never once per call
    assert "Redis is unavailable" in warnings[0].getMessage()
    store.client.close()


def test_the_factory_picks_the_redis_store_only_with_redis_url(
        make_config: Any, drain: Any, monkeypatch: pytest.MonkeyPatch,
        log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    breaker_log = log_records("lynkr.resilience")
    local = InProcessStore()
    assert breaker_store_for("", local, 60_000) is local
    monkeypatch.setattr("app.factory.BREAKER_STORE", local)  # not the process-wide one
    app = create_app(make_config(redis_url=closed_url(), prompt_cache_enabled=False), drain=drain)
    store = app.extensions["lynkr"].breakers.get("databricks").store
    assert isinstance(store, RedisBreakerStore)
    assert store.local is local
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 200  # Redis down never fails a request
    assert any("Redis is unavailable" in r.getMessage() for r in breaker_log)
    app.extensions["lynkr"].recorder.flush()
    store.client.close()


def test_redis_and_shared_memory_stores_agree_on_every_transition(server: redis.Redis, name: str,
                                                                  clock: FakeClock) -> None:
    from app.resilience.shm import SharedMemoryStore

    redis_store = RedisBreakerStore.from_url(REDIS_URL, InProcessStore())
    stores = [redis_store, SharedMemoryStore(capacity=4)]
    breakers = [BreakerRegistry([name], CONFIG, store=store, clock=clock).get(name) for store in stores]
    steps: list[Callable[[CircuitBreaker], object]] = [
        *[CircuitBreaker.record_failure] * 5,
        lambda b: b.allow(), lambda b: b.allow(last_resort=True), lambda b: b.allow(last_resort=True),
        CircuitBreaker.record_failure, lambda b: b.allow(last_resort=True), CircuitBreaker.record_success,
        CircuitBreaker.release, lambda b: b.allow(last_resort=True), CircuitBreaker.record_success,
        CircuitBreaker.record_failure,
    ]
    try:
        for number, step in enumerate(steps):
            answers = [step(breaker) for breaker in breakers]
            assert answers[0] == answers[1], f"step {number}"
            assert stores[0].read(name) == stores[1].read(name), f"step {number}"
            clock.advance(0.25)
    finally:
        redis_store.client.close()
    assert stores[1].read(name).state is BreakerState.CLOSED
    assert stores[1].read(name).failures == 1
