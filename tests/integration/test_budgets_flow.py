"""Budgets, rate limits, database keys and costs through the Flask client (Databricks mocked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from app.accounting.keys import KeyStore, create_key, revoke_key
from app.factory import create_app
from app.resilience.retry import InProcessStore
from app.storage.db import db
from app.storage.models import ClientRequest, UpstreamAttempt
from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request

NOW = datetime(2026, 11, 25, 17, 30, 15, tzinfo=UTC)
KEY = "sk-test-budget-key-0001"
HEADERS = {"x-api-key": KEY, "x-claude-code-session-id": "sess-b"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(DATABRICKS_URL, json=make_message(usage={"input_tokens": 600, "output_tokens": 400}))
        yield rsps


@pytest.fixture
def build(make_config: Any, drain: Any) -> Any:
    apps = []

    def make(key_store: KeyStore | None = None, **overrides: Any) -> Any:
        overrides.setdefault("api_keys", (KEY,))
        application = create_app(make_config(prompt_cache_enabled=False, **overrides), drain=drain,
                                 breaker_store=InProcessStore(), key_store=key_store, clock=lambda: NOW)
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.extensions["lynkr"].recorder.flush()


def test_a_spent_daily_budget_answers_402_naming_it(build: Any, mocked: Any) -> None:
    client = build(budget_key_daily_tokens=1000).test_client()
    assert client.post("/v1/messages", json=make_request(), headers=HEADERS).status_code == 200
    refused = client.post("/v1/messages", json=make_request(), headers=HEADERS)
    assert refused.status_code == 402
    error = refused.get_json()["error"]
    assert error["type"] == "billing_error"
    assert error["message"].startswith("Daily token budget for key key_")
    assert error["message"].endswith("is spent (1000 of 1000 tokens); it resets at 2026-11-26T00:00:00Z")
    assert len(mocked.calls) == 1  # a refused request never reaches the upstream


def test_a_session_usd_budget_counts_the_real_cost(build: Any, mocked: Any) -> None:
    client = build(budget_session_usd=0.0078).test_client()  # one call: 600 * $3 + 400 * $15 per million
    assert client.post("/v1/messages", json=make_request(), headers=HEADERS).status_code == 200
    refused = client.post("/v1/messages", json=make_request(), headers=HEADERS)
    assert refused.status_code == 402
    assert "Session USD budget for session sess-b is spent ($0.01 of $0.01)" in refused.get_json()["error"]["message"]
    other = client.post("/v1/messages", json=make_request(), headers={**HEADERS, "x-claude-code-session-id": "new"})
    assert other.status_code == 200


def test_an_unpriced_model_is_refused_under_a_usd_budget(build: Any, mocked: Any) -> None:
    client = build(budget_key_daily_usd=5.0).test_client()
    refused = client.post("/v1/messages", json=make_request(model="my-local-model"), headers=HEADERS)
    assert refused.status_code == 402
    assert "Model my-local-model has no price" in refused.get_json()["error"]["message"]


def test_requests_per_minute_answer_429_with_retry_after_and_count_tokens_is_exempt(build: Any, mocked: Any) -> None:
    client = build(rate_limit_requests_per_minute=1).test_client()
    assert client.post("/v1/messages", json=make_request(), headers=HEADERS).status_code == 200
    limited = client.post("/v1/messages", json=make_request(), headers=HEADERS)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"  # the first request leaves the window 60 s after it came
    assert limited.get_json()["error"]["type"] == "rate_limit_error"
    for _ in range(3):
        counted = client.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-5",
                                                                "messages": [{"role": "user", "content": "Hi"}]},
                              headers=HEADERS)
        assert counted.status_code == 200


def test_a_revoked_database_key_is_refused_within_five_seconds(build: Any, mocked: Any) -> None:
    clock = FakeClock()
    application = build(key_store=KeyStore(clock=clock), api_keys=())
    with application.app_context(), db.connection_context():
        _, key = create_key("ci-bot")
    client = application.test_client()
    assert client.post("/v1/messages", json=make_request(), headers={"x-api-key": key}).status_code == 200
    with application.app_context(), db.connection_context():
        revoke_key("ci-bot")
    clock.now += 5.01
    refused = client.post("/v1/messages", json=make_request(), headers={"x-api-key": key})
    assert refused.status_code == 401
    assert client.post("/v1/messages", json=make_request()).status_code == 401  # keys stay required


def test_usage_rows_carry_their_cost(build: Any, mocked: Any) -> None:
    application = build()
    client = application.test_client()
    response = client.post("/v1/messages", json=make_request(), headers={**HEADERS, "x-request-id": "req-cost"})
    assert response.status_code == 200
    application.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req-cost")
        assert row.cost_usd == pytest.approx(600 * 3e-6 + 400 * 15e-6)
        assert UpstreamAttempt.get(UpstreamAttempt.request == row).cost_usd == pytest.approx(row.cost_usd)
