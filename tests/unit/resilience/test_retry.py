"""Retry policy: backoff with full jitter, retry-after, attempts and budget, fallback on refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from app.resilience.retry import RetryPolicy, client_retry_after, parse_retry_after
from tests.fakes.clock import FakeClock

NOW = 1_700_000_000.0


def make_policy(rng: float = 0.5, clock: FakeClock | None = None, **overrides: int) -> RetryPolicy:
    return RetryPolicy(rng=lambda: rng, clock=clock or FakeClock(), wall_clock=lambda: NOW, **overrides)


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


@pytest.mark.parametrize("rng", [0.0, 0.5, 0.999999])
def test_backoff_is_full_jitter_under_a_doubling_ceiling(rng: float) -> None:
    policy = make_policy(rng)
    delays = [policy.delay(attempt) for attempt in range(4)]
    assert delays == pytest.approx([rng * 1.0, rng * 2.0, rng * 4.0, rng * 8.0])


def test_backoff_ceiling_is_capped_at_max_delay() -> None:
    policy = make_policy(0.999999, max_delay_ms=5000)
    assert policy.delay(3) == pytest.approx(0.999999 * 5.0)
    assert policy.delay(200) == pytest.approx(0.999999 * 5.0)


def test_retry_after_seconds_is_honoured_and_capped() -> None:
    policy = make_policy(0.0, max_delay_ms=30000)
    assert policy.delay(0, "7") == 7.0
    assert policy.delay(0, "120") == 30.0


def test_retry_after_http_date_is_honoured_and_capped() -> None:
    policy = make_policy(0.0, max_delay_ms=30000)
    assert policy.delay(0, http_date(NOW + 12)) == pytest.approx(12.0)
    assert policy.delay(0, http_date(NOW + 3600)) == 30.0
    assert policy.delay(0, http_date(NOW - 60)) == 0.0


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    assert make_policy(0.5).delay(1, "soon") == pytest.approx(1.0)


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None), ("", None), ("2.5", 2.5), ("-3", 0.0), ("nan", None),
    ("Tue, 14 Nov 2023 22:13:30 -0000", 10.0),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_retryable_statuses_get_a_delay(status: int) -> None:
    assert make_policy(0.5).start().should_retry(status, False, None) == pytest.approx(0.5)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 501])
def test_other_statuses_are_never_retried(status: int) -> None:
    state = make_policy().start()
    assert state.should_retry(status, False, None) is None
    assert state.attempts == 0


def test_no_response_without_a_connect_error_is_not_retried() -> None:
    assert make_policy().start().should_retry(None, False, None) is None


def test_connect_error_is_retried() -> None:
    assert make_policy(0.5).start().should_retry(None, True, None) == pytest.approx(0.5)


def test_attempts_exhausted_gives_up() -> None:
    state = make_policy(0.0, max_retries=3).start()
    assert [state.should_retry(503, False, None) for _ in range(4)] == [0.0, 0.0, 0.0, None]
    assert state.attempts == 3


def test_budget_exhausted_gives_up() -> None:
    clock = FakeClock()
    state = make_policy(0.5, clock, budget_ms=10000).start()
    clock.advance(9.0)
    assert state.should_retry(503, False, None) == pytest.approx(0.5)
    assert state.over_budget is None
    clock.advance(0.5)
    assert state.should_retry(503, False, None) is None  # 9.5 s spent + 1.0 s wait > 10 s
    assert state.over_budget == pytest.approx(1.0)  # the wait refused, for the client's retry-after


def test_only_the_budget_sets_over_budget() -> None:
    state = make_policy(0.0, max_retries=0).start()
    assert state.should_retry(503, False, None) is None
    assert state.should_retry(400, False, None) is None
    assert state.over_budget is None


def test_retry_after_longer_than_the_budget_gives_up() -> None:
    state = make_policy(0.0, budget_ms=20000).start()
    assert state.should_retry(429, False, "25") is None
    assert state.over_budget == 25.0


@pytest.mark.parametrize(("seconds", "header"), [
    (0.0, "1"), (0.5, "1"), (1.0, "1"), (2.2, "3"), (59.5, "60"), (3600.0, "60"), (None, "60"),
])
def test_client_retry_after_is_whole_seconds_from_1_to_60(seconds: float | None, header: str) -> None:
    assert client_retry_after(seconds) == header


def test_refused_connection_with_a_fallback_falls_back_at_once() -> None:
    policy = make_policy(0.5)
    assert policy.start(has_fallback=True).should_retry(None, True, None, refused=True) is None
    assert policy.start(has_fallback=False).should_retry(None, True, None, refused=True) == pytest.approx(0.5)


def test_other_connect_errors_are_retried_even_with_a_fallback() -> None:
    state = make_policy(0.5).start(has_fallback=True)
    assert state.should_retry(None, True, None) == pytest.approx(0.5)
