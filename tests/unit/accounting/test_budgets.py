"""Budgets and rate limits on shared counters: holds, settling, refusals and their wording."""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from peewee import Database

from app.accounting.budgets import Budgets, Limit, estimate_hold_tokens, resets_at
from app.accounting.pricing import PriceTable
from app.accounting.ratelimit import DbCounters
from app.anthropic.tokens import IMAGE_TOKENS, estimate_tokens
from app.config import Config
from app.errors import BillingError, RateLimitError
from app.storage.db import bind, db, make_database
from app.storage.migrate import migrate
from app.storage.models import RateWindowEntry

NOW = datetime(2026, 11, 25, 17, 30, 15, tzinfo=UTC)
KEY = "key_ab12cd34ef56ab78"
PG_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")


def make_request(max_tokens: int = 1000) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Hi"}]}


def make_budgets(*limits: Limit, clock: Any = lambda: NOW, prices: PriceTable | None = None) -> Budgets:
    return Budgets(list(limits), DbCounters(), prices or PriceTable(), clock=clock)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = make_database(Config(session_db_path=str(tmp_path / "budgets.db")))
    bind(database)
    migrate(database)
    with db.connection_context():
        yield database
    database.close_all()


def test_a_spent_daily_token_budget_is_refused_naming_the_budget_and_its_reset(database: Database) -> None:
    budgets = make_budgets(Limit("key", "daily", "tokens", 1500))
    held = budgets.admit(KEY, None, "databricks-claude-sonnet-4-5", make_request())
    budgets.settle(held, "databricks-claude-sonnet-4-5", {"input_tokens": 1000, "output_tokens": 500})
    with pytest.raises(BillingError) as refused:
        budgets.admit(KEY, None, "databricks-claude-sonnet-4-5", make_request())
    assert refused.value.status == 402
    assert refused.value.message == ("Daily token budget for key key_ab12… is spent (1500 of 1500 tokens); "
                                     "it resets at 2026-11-26T00:00:00Z")


def test_the_request_that_crosses_the_limit_is_let_through_and_none_after_it(database: Database) -> None:
    budgets = make_budgets(Limit("key", "monthly", "tokens", 1500))
    first = budgets.admit(KEY, None, "m", make_request())
    budgets.admit(KEY, None, "m", make_request())  # 1000 + prompt held of 1500: still under
    with pytest.raises(BillingError, match=r"Monthly token budget .* it resets at 2026-12-01T00:00:00Z"):
        budgets.admit(KEY, None, "m", make_request())
    budgets.settle(first, "m", {"input_tokens": 10, "output_tokens": 5})  # the real usage gives room back
    budgets.admit(KEY, None, "m", make_request())


def test_a_refusal_gives_back_what_the_other_limits_held(database: Database) -> None:
    budgets = make_budgets(Limit("key", "minute", "requests", 100), Limit("session", "session", "tokens", 10))
    budgets.admit(KEY, "s1", "m", make_request())
    with pytest.raises(BillingError, match=r"Session token budget for session s1 is spent .* does not reset"):
        budgets.admit(KEY, "s1", "m", make_request())
    assert RateWindowEntry.select().where(RateWindowEntry.scope == f"key:{KEY}:minute:requests").count() == 1


def test_usd_budgets_are_counted_in_micro_dollars_at_the_model_price(database: Database) -> None:
    budgets = make_budgets(Limit("key", "daily", "usd", 0.02))
    held = budgets.admit(KEY, None, "gpt-4o", make_request(max_tokens=100))
    budgets.settle(held, "gpt-4o", {"input_tokens": 2000, "output_tokens": 1500})  # $0.005 + $0.015
    with pytest.raises(BillingError) as refused:
        budgets.admit(KEY, None, "gpt-4o", make_request())
    assert "Daily USD budget for key key_ab12… is spent ($0.02 of $0.02)" in refused.value.message


def test_a_model_with_no_price_is_refused_under_a_usd_budget_saying_why(database: Database) -> None:
    budgets = make_budgets(Limit("key", "monthly", "usd", 5))
    with pytest.raises(BillingError, match=r"Model qwen2.5-coder:7b has no price, so it cannot be used under the "
                                           r"monthly usd budget .*PRICE_TABLE.*DEFAULT_PRICE_INPUT"):
        budgets.admit(KEY, None, "qwen2.5-coder:7b", make_request())
    budgets = make_budgets(Limit("key", "monthly", "tokens", 5000))
    budgets.admit(KEY, None, "qwen2.5-coder:7b", make_request())  # token budgets need no price


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_requests_per_minute_answer_429_until_the_oldest_request_is_a_minute_old(database: Database) -> None:
    clock = Clock(NOW)
    budgets = make_budgets(Limit("key", "minute", "requests", 2), clock=clock)
    budgets.admit(KEY, None, "m", make_request())
    clock.now = NOW + timedelta(seconds=20)
    budgets.admit(KEY, None, "m", make_request())
    clock.now = NOW + timedelta(seconds=44.5)
    with pytest.raises(RateLimitError) as refused:
        budgets.admit(KEY, None, "m", make_request())
    assert refused.value.status == 429
    assert refused.value.message == "Rate limit of 2 requests per minute for key key_ab12… is reached; retry in 16 s."
    assert refused.value.headers["retry-after"] == "16"
    clock.now = NOW + timedelta(seconds=60)
    budgets.admit(KEY, None, "m", make_request())
    with pytest.raises(RateLimitError, match="retry in 20 s"):
        budgets.admit(KEY, None, "m", make_request())


def test_a_burst_across_a_minute_boundary_is_held_to_the_limit(database: Database) -> None:
    # The calendar-minute counter this replaced let 100 requests through in 0.42 s with a limit of 50.
    clock = Clock(datetime(2026, 11, 25, 17, 30, 59, 790_000, tzinfo=UTC))
    budgets = make_budgets(Limit("key", "minute", "requests", 50), clock=clock)
    admitted = 0
    for _ in range(100):
        clock.now += timedelta(milliseconds=4.2)  # 17:30:59.794 … 17:31:00.210
        try:
            budgets.admit(KEY, None, "m", make_request())
            admitted += 1
        except RateLimitError:
            pass
    assert admitted == 50
    clock.now = datetime(2026, 11, 25, 17, 31, 59, 700_000, tzinfo=UTC)  # 60 s after the first: 17:31:59.794
    with pytest.raises(RateLimitError, match="retry in 1 s"):
        budgets.admit(KEY, None, "m", make_request())


def test_a_released_request_gives_its_place_in_the_window_back(database: Database) -> None:
    budgets = make_budgets(Limit("key", "minute", "requests", 1))
    held = budgets.admit(KEY, None, "m", make_request())
    budgets.release(held)
    budgets.admit(KEY, None, "m", make_request())
    with pytest.raises(RateLimitError):
        budgets.admit(KEY, None, "m", make_request())


def test_tokens_per_minute_count_the_settled_usage(database: Database) -> None:
    budgets = make_budgets(Limit("key", "minute", "tokens", 2000))
    held = budgets.admit(KEY, None, "m", make_request())
    budgets.settle(held, "m", {"input_tokens": 700, "output_tokens": 200})
    assert [row.amount for row in RateWindowEntry.select()] == [900]
    with pytest.raises(RateLimitError, match=r"Rate limit of 2000 tokens per minute for key key_ab12…"):
        budgets.admit(KEY, None, "m", make_request(max_tokens=1500))  # 900 + 1500 + the prompt > 2000
    budgets.admit(KEY, None, "m", make_request(max_tokens=1000))


def test_no_limits_hold_nothing_and_keys_are_counted_apart(database: Database) -> None:
    assert make_budgets().admit(KEY, None, "m", make_request()).holds == []
    budgets = make_budgets(Limit("key", "daily", "tokens", 100))
    budgets.admit("key_one", None, "m", make_request())
    budgets.admit("key_two", None, "m", make_request())
    budgets.admit(None, None, "m", make_request())
    with pytest.raises(BillingError, match=r"for clients without a key"):
        budgets.admit(None, None, "m", make_request())


def test_the_hold_counts_a_screenshot_as_routing_does_not_by_its_base64_bytes() -> None:
    request = make_request()
    request["messages"][0]["content"] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1_000_000}},
        {"type": "text", "text": "What is on the screen?"}]
    prompt, _ = estimate_hold_tokens(request)
    assert prompt == estimate_tokens(request)
    assert IMAGE_TOKENS <= prompt < IMAGE_TOKENS + 100


def test_estimates_and_resets() -> None:
    prompt, output = estimate_hold_tokens(make_request(max_tokens=4096))
    assert output == 4096
    assert 0 < prompt < 100
    huge = make_request()
    huge["messages"][0]["content"] = "x" * 10_000_000
    assert estimate_hold_tokens(huge)[0] == 200_000
    assert resets_at("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert resets_at("session", NOW) is None


# -- concurrency on PostgreSQL -------------------------------------------------------------------

LIMIT = 60_000
THREADS = 16


def _spend(scope_key: str, results: Any) -> None:
    """One process: 16 threads reserve and settle against one budget until it is refused."""
    from app.config import Config as ProcessConfig

    database = make_database(ProcessConfig(database_url=PG_URL, threads=THREADS))
    bind(database)
    budgets = Budgets([Limit("key", "daily", "tokens", LIMIT)], DbCounters(), PriceTable())
    spent: list[int] = []
    biggest: list[int] = []

    def worker() -> None:
        rng = random.Random()
        with db.connection_context():
            while True:
                request = make_request(max_tokens=rng.randint(200, 2000))
                try:
                    held = budgets.admit(scope_key, None, "m", request)
                except BillingError:
                    return
                hold = held.holds[0].amount
                actual = rng.randint(hold // 2, hold)  # real usage never exceeds the estimate
                budgets.settle(held, "m", {"input_tokens": actual})
                spent.append(actual)
                biggest.append(hold)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.close_all()
    results.put((sum(spent), max(biggest, default=0), len(spent)))


@pytest.mark.postgres
def test_two_processes_of_sixteen_threads_never_overspend_by_more_than_one_request() -> None:
    database = make_database(Config(database_url=PG_URL))
    bind(database)
    try:
        migrate(database)
    except Exception as exc:  # the server must be there: a missing one is a failure, not a skip
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable ({exc}); run scripts/start-services.sh")
    scope_key = "key_" + uuid.uuid4().hex[:16]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_spend, args=(scope_key, results)) for _ in range(2)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    spent = sum(total for total, _, _ in outcomes)
    biggest = max(big for _, big, _ in outcomes)
    with db.connection_context():
        used = DbCounters().take(f"key:{scope_key}:daily:tokens", datetime.now(UTC).strftime("%Y-%m-%d"),
                                 0, 10**12, 0)[1]
    database.close_all()
    assert sum(n for _, _, n in outcomes) > 40  # both processes really competed
    assert used == spent  # every hold was settled to its real usage, none lost or doubled
    assert spent <= LIMIT + biggest
