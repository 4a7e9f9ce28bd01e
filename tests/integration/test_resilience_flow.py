"""Retries, circuit breakers and fallback through /v1/messages, with responses registries."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from responses import registries

from app.sse import SSEDecoder
from app.streams import validate_stream
from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request, make_stream_events, sse_body
from tests.integration.test_messages_openai import make_completion

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.fixture
def ordered() -> Any:
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mocked:
        yield mocked


def make_fast_app(make_app: Any, **overrides: Any) -> Any:
    settings = {"retry_max_retries": 3, "retry_initial_delay_ms": 1, "retry_max_delay_ms": 5,
                "fallback_enabled": False}
    settings.update(overrides)
    return make_app(**settings)


def test_retry_then_succeed(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app)
    ordered.post(DATABRICKS_URL, status=529, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, status=500, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 200
    assert len(ordered.calls) == 3


def test_retries_exhausted_return_the_last_error(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=2)
    for _ in range(3):
        ordered.post(DATABRICKS_URL, status=529, json=OVERLOADED, headers={"retry-after": "0"})
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 529
    assert response.get_json() == OVERLOADED
    assert len(ordered.calls) == 3


def test_client_errors_are_never_retried(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app)
    ordered.post(DATABRICKS_URL, status=400, json={"type": "error", "error": {
        "type": "invalid_request_error", "message": "bad"}})
    assert app.test_client().post("/v1/messages", json=make_request()).status_code == 400
    assert len(ordered.calls) == 1


def test_refused_primary_falls_back_at_once(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, model_provider="openai", openai_api_key="sk-test-1234567",
                        fallback_enabled=True, fallback_provider="databricks")
    ordered.post(OPENAI_URL, body=requests.ConnectionError("[Errno 111] Connection refused"))
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 200
    assert response.headers["X-Lynkr-Provider"] == "databricks"
    assert response.headers["X-Lynkr-Route-Reason"] == "fallback"
    assert len(ordered.calls) == 2


def test_breaker_opens_after_five_failures_and_fails_fast(make_app: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0)
    client = app.test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=502, body="bad gateway")
        for _ in range(5):
            assert client.post("/v1/messages", json=make_request()).status_code == 502
        response = client.post("/v1/messages", json=make_request())
        assert len(mocked.calls) == 5
    assert response.status_code == 503
    assert response.get_json()["error"]["type"] == "overloaded_error"
    assert "circuit breaker is open" in response.get_json()["error"]["message"]
    assert app.extensions["lynkr"].breakers.get("databricks").snapshot()["state"] == "OPEN"


def test_open_breaker_hands_over_to_the_fallback(make_app: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0, model_provider="openai", openai_api_key="sk-test-1234567",
                        fallback_enabled=True, fallback_provider="databricks")
    breaker = app.extensions["lynkr"].breakers.get("openai")
    for _ in range(5):
        breaker.record_failure()
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        response = app.test_client().post("/v1/messages", json=make_request(stream=False))
        assert [c.request.url for c in mocked.calls] == [DATABRICKS_URL]
    assert response.headers["X-Lynkr-Provider"] == "databricks"


def test_stream_fallback_before_the_first_byte(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0, model_provider="openai", openai_api_key="sk-test-1234567",
                        fallback_enabled=True, fallback_provider="databricks")
    ordered.post(OPENAI_URL, status=503, json={"error": {"message": "down"}})
    ordered.post(DATABRICKS_URL, body=sse_body(make_stream_events()), content_type="text/event-stream")
    response = app.test_client().post("/v1/messages", json=make_request(stream=True))
    assert response.status_code == 200
    assert response.headers["X-Lynkr-Provider"] == "databricks"
    events = [e.json() for e in SSEDecoder().feed(response.get_data())]
    validate_stream(events)
    assert events[-1] == {"type": "message_stop"}
    assert json.loads(ordered.calls[1].request.body)["model"] == "databricks-claude-sonnet-4-5"


def test_openai_usage_row_records_each_attempt(make_app: Any, ordered: Any) -> None:
    from app.db import db
    from app.models import ClientRequest, UpstreamAttempt

    app = make_fast_app(make_app, model_provider="openai", openai_api_key="sk-test-1234567")
    ordered.post(OPENAI_URL, status=500, json={"error": {"message": "oops"}})
    ordered.post(OPENAI_URL, json=make_completion())
    app.test_client().post("/v1/messages", json=make_request(), headers={"x-request-id": "req-attempts"})
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req-attempts")
        attempts = list(UpstreamAttempt.select().where(UpstreamAttempt.request == row.id)
                        .order_by(UpstreamAttempt.attempt))
    assert [(a.provider, a.status) for a in attempts] == [("openai", 500), ("openai", 200)]
    assert row.status == 200


def test_circuit_breakers_view(make_app: Any) -> None:
    app = make_fast_app(make_app)
    app.extensions["lynkr"].breakers.get("openai").record_failure()
    view = app.test_client().get("/metrics/circuit-breakers").get_json()["breakers"]
    assert set(view) >= {"databricks", "openai", "azure-anthropic"}
    assert view["openai"]["state"] == "CLOSED"
    assert view["openai"]["failures"] == 1
    assert view["openai"]["last_failure_at"] is not None


def test_shedding_answers_503_with_retry_after(make_app: Any) -> None:
    app = make_fast_app(make_app, active_requests_threshold=1)
    app.extensions["lynkr"].limiter.try_acquire(wait_s=0)
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "overloaded (active_requests)" in response.get_json()["error"]["message"]
    assert app.test_client().get("/health/live").status_code == 200


def test_queue_time_from_nginx_is_shed(make_app: Any) -> None:
    import time

    app = make_fast_app(make_app, max_queue_ms=100)
    response = app.test_client().post("/v1/messages", json=make_request(),
                                      headers={"X-Request-Start": f"t={time.time() - 2:.3f}"})
    assert response.status_code == 503
    assert "queue_time" in response.get_json()["error"]["message"]


def test_routing_rule_sends_haiku_to_a_named_model(make_app: Any, tmp_path: Any) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"if": {"model": "haiku"}, "then": "openai:gpt-4o-mini"}]))
    app = make_fast_app(make_app, routing_rules_file=str(rules), openai_api_key="sk-test-1234567")
    with responses.RequestsMock() as mocked:
        mocked.post(OPENAI_URL, json=make_completion())
        response = app.test_client().post("/v1/messages", json=make_request(model="claude-haiku-4-5"))
        assert json.loads(mocked.calls[0].request.body)["model"] == "gpt-4o-mini"
    assert response.headers["X-Lynkr-Route-Reason"] == "rule:1"
    assert response.headers["X-Lynkr-Model"] == "gpt-4o-mini"
    assert response.get_json()["model"] == "claude-haiku-4-5"


def test_a_prompt_no_candidate_can_hold_gets_anthropic_wording(make_app: Any) -> None:
    app = make_fast_app(make_app, model_provider="openai", openai_api_key="sk-test-1234567", openai_model="gpt-4o")
    huge = [{"role": "user", "content": "word " * 120_000}]
    with responses.RequestsMock() as mocked:
        response = app.test_client().post("/v1/messages", json=make_request(messages=huge))
        assert len(mocked.calls) == 0
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert message.startswith("prompt is too long: ")
    assert message.endswith(" tokens > 128000 maximum")
