from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.accounting.auth import key_id
from app.accounting.keys import create_key
from app.config import Config
from app.storage.db import db
from app.storage.models import ClientRequest
from app.web import overview
from app.web.charts import Column

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
ALICE, BOB = "sk-alice-0000000001", "sk-bob-00000000002"
REQUEST_IDS = itertools.count(1)


@pytest.fixture
def database(make_app: Any) -> Iterator[None]:
    app = make_app()
    with app.app_context(), db.connection_context():
        yield


def add_request(at: datetime, *, key: str | None = ALICE, status: int | None = 200, model: str = "m1",
                provider: str = "p1", tokens: tuple[int, int, int, int] = (10, 5, 0, 0),
                cost: float | None = 0.01) -> None:
    ClientRequest.create(request_id=f"req_{next(REQUEST_IDS)}", path="/v1/messages",
                         api_key=key_id(key) if key else None, provider=provider, model=model, status=status,
                         input_tokens=tokens[0], output_tokens=tokens[1], cache_read_input_tokens=tokens[2],
                         cache_creation_input_tokens=tokens[3], cost_usd=cost, created_at=at)


@pytest.mark.usefixtures("database")
def test_traffic_counts_requests_and_errors_per_bucket() -> None:
    since = NOW - timedelta(hours=1)
    add_request(since - timedelta(minutes=1))  # before the window
    add_request(since + timedelta(minutes=1))
    add_request(since + timedelta(minutes=14), status=502)
    add_request(since + timedelta(minutes=50), status=None)  # never answered: an error
    add_request(since + timedelta(minutes=50), status=429)
    add_request(since + timedelta(minutes=50))
    columns = overview.traffic(since, NOW, buckets=4)
    assert columns == [Column(since, 2, 1), Column(since + timedelta(minutes=15), 0, 0),
                       Column(since + timedelta(minutes=30), 0, 0), Column(since + timedelta(minutes=45), 3, 2)]


@pytest.mark.usefixtures("database")
def test_usage_is_grouped_by_provider_model_and_key_most_expensive_first() -> None:
    add_request(NOW, model="m1", cost=0.01)
    add_request(NOW, model="m1", cost=0.02)
    add_request(NOW, model="m2", key=BOB, cost=0.5)
    add_request(NOW, model="m3", key=None, cost=None)
    names = {key_id(ALICE): "alice"}
    groups = overview.usage_groups(NOW - timedelta(hours=1), names)
    assert [(g.model, g.key, g.requests, g.input_tokens, g.cost_usd) for g in groups] == [
        ("m2", key_id(BOB), 1, 10, 0.5), ("m1", "alice", 2, 20, pytest.approx(0.03)), ("m3", "(no key)", 1, 10, 0.0)]
    assert overview.totals_by(groups, "provider") == [("p1", pytest.approx(0.53))]
    assert overview.tokens_by(groups, "key") == [("alice", 30.0), ("(no key)", 15.0), (key_id(BOB), 15.0)]


@pytest.mark.usefixtures("database")
def test_budget_use_counts_every_token_kind_in_the_current_period() -> None:
    add_request(NOW.replace(day=1, hour=1), tokens=(100, 0, 0, 0))  # this month, not today
    add_request(NOW - timedelta(hours=1), tokens=(10, 5, 3, 2), cost=0.25)
    config = Config(budget_key_daily_tokens=100, budget_key_monthly_usd=1.0)
    uses = overview.budget_use(config, NOW, {key_id(ALICE): "alice"})
    assert [(u.key, u.budget, u.used, u.limit, u.fraction) for u in uses] == [
        ("alice", "Monthly USD", pytest.approx(0.26), 1.0, pytest.approx(0.26)),
        ("alice", "Daily tokens", 20.0, 100.0, 0.2)]


@pytest.mark.usefixtures("database")
def test_key_names_come_from_the_variables_and_the_key_table() -> None:
    _, key = create_key("laptop")
    names = overview.key_names(Config(api_keys=(ALICE, BOB), admin_keys=("sk-admin-01234567",)))
    assert names == {key_id(ALICE): "LYNKR_API_KEYS #1", key_id(BOB): "LYNKR_API_KEYS #2",
                     key_id("sk-admin-01234567"): "LYNKR_ADMIN_KEYS #1", key_id(key): "laptop"}


def test_cache_hit_rate_and_windows() -> None:
    assert overview.cache_hit_rate({"cost_savings": {"cache_hits": 1, "cache_misses": 3}}) == 0.25
    assert overview.cache_hit_rate({"cost_savings": {"cache_hits": 0, "cache_misses": 0}}) is None
    assert overview.window_start("1h", NOW) == NOW - timedelta(hours=1)
    assert overview.window_start("bogus", NOW) == NOW - timedelta(hours=24)
