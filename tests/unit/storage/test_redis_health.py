"""One Redis client per URL, and RedisHealth: fall back on failure, skip Redis for a while, warn sparingly."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis

from app.storage.redis_health import RETRY_AFTER_S, SOCKET_TIMEOUT_S, WARN_EVERY_S, RedisHealth, connect
from tests.unit.conftest import REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A Redis action that fails until told otherwise, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = True

    def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return "redis"


@pytest.fixture
def health(log_records: Callable[[str], list[logging.LogRecord]]) -> tuple[RedisHealth, Clock, list[logging.LogRecord]]:
    log = logging.getLogger("unit.redis")
    log.setLevel(logging.INFO)
    clock = Clock()
    return RedisHealth("prompt cache", "local tier only", "unit", log, clock), clock, log_records("unit.redis")


def test_connect_gives_one_client_per_url_with_short_timeouts_and_no_retries() -> None:
    client = connect("redis://127.0.0.1:1/3")
    assert connect("redis://127.0.0.1:1/3") is client
    assert connect("redis://127.0.0.1:1/4") is not client
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["db"]) == (
        SOCKET_TIMEOUT_S, SOCKET_TIMEOUT_S, 3)
    assert kwargs["retry"].get_retries() == 0


def test_a_working_call_returns_its_result_and_logs_nothing(health: tuple) -> None:
    tier, _, records = health
    assert tier.call(lambda: "redis", lambda: "fallback") == "redis"
    assert records == []


def test_a_failure_falls_back_warns_once_and_skips_redis_until_the_wait_is_over(health: tuple) -> None:
    tier, clock, records = health
    upstream = Upstream()
    assert tier.call(upstream, lambda: "fallback") == "fallback"
    assert [(r.levelno, r.getMessage(), r.event) for r in records] == [(
        logging.WARNING,
        "prompt cache: Redis is unavailable (ConnectionError: Connection refused); local tier only "
        "(1 failed call(s) since the last warning)", "unit_redis_down")]
    clock.now += RETRY_AFTER_S - 0.1
    assert tier.call(upstream, lambda: "fallback") == "fallback"
    assert upstream.calls == 1  # skipped, not tried
    clock.now += 0.2
    upstream.down = False
    assert tier.call(upstream, lambda: "fallback") == "redis"
    assert upstream.calls == 2
    assert [(r.levelno, r.getMessage(), r.event) for r in records[1:]] == [
        (logging.INFO, "prompt cache: Redis is reachable again", "unit_redis_up")]
    assert tier.call(upstream, lambda: "fallback") == "redis"
    assert len(records) == 2


def test_repeated_outages_warn_at_most_once_a_minute_with_the_count(health: tuple) -> None:
    tier, clock, records = health
    upstream = Upstream()
    for _ in range(3):
        tier.call(upstream, lambda: None)
        clock.now += RETRY_AFTER_S + 1
    assert upstream.calls == 3
    assert [r.event for r in records] == ["unit_redis_down"]
    clock.now += WARN_EVERY_S
    tier.call(upstream, lambda: None)
    assert [r.event for r in records] == ["unit_redis_down", "unit_redis_down"]
    assert records[-1].getMessage().endswith("(3 failed call(s) since the last warning)")


def test_errors_other_than_redis_and_os_errors_propagate(health: tuple) -> None:
    tier, _, _ = health

    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        tier.call(broken, lambda: None)


@pytest.mark.redis
def test_connect_reaches_the_test_redis(redis_client: redis.Redis) -> None:
    assert connect(REDIS_URL).ping() is True
