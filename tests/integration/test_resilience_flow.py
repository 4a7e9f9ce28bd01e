"""Retries, circuit breakers and fallback through /v1/messages, with responses registries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from responses import registries

from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from app.sources import open_sources
from tests.conftest import DATABRICKS_URL
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.integration.test_messages_anthropic import make_message, make_request, make_stream_events, sse_body
from tests.integration.test_messages_openai import make_completion
from tests.integration.test_ollama_provider import ENDPOINT as OLLAMA_ENDPOINT
from tests.integration.test_ollama_provider import READ, SHOW_URL
from tests.unit.metrics.test_recorder import scrape, value

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
RATE_LIMITED = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}
NOW = 1_700_000_000.0


@pytest.fixture
def ordered() -> Any:
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mocked:
        yield mocked


def make_fast_app(make_app: Any, **overrides: Any) -> Any:
    settings = {"retry_max_retries": 3, "retry_initial_delay_ms": 1, "retry_max_delay_ms": 5,
                "fallback_enabled": False}
    settings.update(overrides)
    return make_app(**settings)


class FakeTime:
    """The orchestrator's clocks, moved only by its sleeps, which are kept."""

    def __init__(self) -> None:
        self.monotonic = 0.0
        self.wall = NOW
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.monotonic += seconds
        self.wall += seconds


def fake_time(app: Flask) -> FakeTime:
    """Give ``app``'s retries a :class:`FakeTime` and a jitter that always draws the ceiling."""
    candidates = app.extensions["lynkr"].orchestrator.candidates
    clock = FakeTime()
    candidates.sleep = clock.sleep
    candidates.retry = replace(candidates.retry, rng=lambda: 1.0, clock=lambda: clock.monotonic,
                               wall_clock=lambda: clock.wall)
    return clock


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def test_retry_then_succeed(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app)
    ordered.post(DATABRICKS_URL, status=529, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, status=500, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 200
    assert len(ordered.calls) == 3


def test_backoff_sleeps_double_up_to_success(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_initial_delay_ms=400, retry_max_delay_ms=30000)
    clock = fake_time(app)
    ordered.post(DATABRICKS_URL, status=529, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, body=requests.ConnectionError("Connection reset by peer"))
    ordered.post(DATABRICKS_URL, json=make_message())
    assert app.test_client().post("/v1/messages", json=make_request()).status_code == 200
    assert clock.sleeps == [0.4, 0.8]


@pytest.mark.parametrize("stream", [False, True])
def test_a_fractional_retry_after_is_waited_as_sent(make_app: Any, ordered: Any, stream: bool) -> None:
    app = make_fast_app(make_app, retry_max_delay_ms=30000)
    clock = fake_time(app)
    ordered.post(DATABRICKS_URL, status=429, json=RATE_LIMITED, headers={"retry-after": "0.5"})
    if stream:
        ordered.post(DATABRICKS_URL, body=sse_body(make_stream_events()), content_type="text/event-stream")
    else:
        ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request(stream=stream))
    assert response.status_code == 200
    assert len(ordered.calls) == 2
    assert clock.sleeps == [0.5]


def test_an_http_date_retry_after_is_waited_until(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_max_delay_ms=30000)
    clock = fake_time(app)
    ordered.post(DATABRICKS_URL, status=503, json=OVERLOADED, headers={"retry-after": http_date(NOW + 2)})
    ordered.post(DATABRICKS_URL, json=make_message())
    assert app.test_client().post("/v1/messages", json=make_request()).status_code == 200
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize(("upstream", "expected"), [
    (lambda: "0.5", {"1"}),
    (lambda: "2.2", {"3"}),
    (lambda: http_date(time.time() + 30), {"29", "30"}),  # the date has whole seconds; so may the clock
    (lambda: "soon", {"60"}),
], ids=["fraction", "rounded-up", "http-date", "unreadable"])
def test_the_client_sees_retry_after_in_whole_seconds(make_app: Any, ordered: Any, upstream: Any,
                                                      expected: set[str]) -> None:
    app = make_fast_app(make_app, retry_max_retries=0)
    ordered.post(DATABRICKS_URL, status=429, json=RATE_LIMITED, headers={"retry-after": upstream()})
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 429
    assert response.headers["retry-after"] in expected


@pytest.mark.parametrize("failure", [
    {"status": 500, "body": "internal error"}, {"status": 502, "body": "bad gateway"},
    {"status": 503, "json": OVERLOADED}, {"status": 504, "body": "gateway timeout"},
    {"body": requests.ConnectionError("Connection reset by peer")},
])
def test_past_the_budget_a_retryable_failure_becomes_529_with_retry_after(make_app: Any, ordered: Any,
                                                                          failure: dict[str, Any]) -> None:
    app = make_fast_app(make_app, retry_initial_delay_ms=400, retry_max_delay_ms=30000, retry_budget_ms=1000)
    clock = fake_time(app)
    for _ in range(2):
        ordered.post(DATABRICKS_URL, **failure)
    response = app.test_client().post("/v1/messages", json=make_request())
    assert len(ordered.calls) == 2
    assert clock.sleeps == [0.4]  # the next wait, 0.8 s, would end 1.2 s in: past the 1 s budget
    assert response.status_code == 529
    assert response.get_json()["error"]["type"] == "overloaded_error"
    assert "API_RETRY_BUDGET_MS" in response.get_json()["error"]["message"]
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("status", "body"), [(429, RATE_LIMITED), (529, OVERLOADED)])
def test_past_the_budget_429_and_529_keep_their_answer(make_app: Any, ordered: Any, status: int,
                                                       body: dict[str, Any]) -> None:
    app = make_fast_app(make_app, retry_max_delay_ms=30000, retry_budget_ms=20000)
    clock = fake_time(app)
    ordered.post(DATABRICKS_URL, status=status, json=body, headers={"retry-after": "25"})
    response = app.test_client().post("/v1/messages", json=make_request(stream=True))
    assert len(ordered.calls) == 1  # waiting 25 s would pass the budget: the client waits instead
    assert clock.sleeps == []
    assert response.status_code == status
    assert response.get_json() == {**body, "request_id": response.headers["request-id"]}
    assert response.headers["retry-after"] == "25"


def test_past_the_budget_a_400_stays_a_400(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_budget_ms=1)
    ordered.post(DATABRICKS_URL, status=400, json={"type": "error", "error": {
        "type": "invalid_request_error", "message": "bad"}})
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 400
    assert "retry-after" not in response.headers


def test_past_the_budget_with_a_fallback_hands_over(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_initial_delay_ms=400, retry_max_delay_ms=30000, retry_budget_ms=1000,
                        model_provider="openai", openai_api_key="sk-test-1234567", fallback_enabled=True,
                        fallback_provider="databricks")
    clock = fake_time(app)
    for _ in range(2):
        ordered.post(OPENAI_URL, status=500, json={"error": {"message": "oops"}})
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 200
    assert response.headers["X-Lynkr-Provider"] == "databricks"
    assert clock.sleeps == [0.4]


def test_retries_exhausted_return_the_last_error(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=2)
    for _ in range(3):
        ordered.post(DATABRICKS_URL, status=529, json=OVERLOADED, headers={"retry-after": "0"})
    response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 529
    assert response.get_json() == {**OVERLOADED, "request_id": response.headers["request-id"]}
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


def test_breaker_opens_after_five_failed_requests_and_the_last_candidate_still_probes(make_app: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0, prompt_cache_enabled=False)
    client = app.test_client()
    breaker = app.extensions["lynkr"].breakers.get("databricks")
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=502, body="bad gateway")
        for _ in range(5):
            assert client.post("/v1/messages", json=make_request()).status_code == 502
        assert breaker.snapshot()["state"] == "OPEN"
        # No other provider can take it: the request goes as the half-open probe, not refused.
        response = client.post("/v1/messages", json=make_request())
        assert len(mocked.calls) == 6
    assert response.status_code == 502
    assert breaker.snapshot()["state"] == "OPEN"  # the failed probe re-opened it
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        assert client.post("/v1/messages", json=make_request()).status_code == 200
        assert client.post("/v1/messages", json=make_request()).status_code == 200
    assert breaker.snapshot()["state"] == "CLOSED"  # two good probes (CIRCUIT_BREAKER_SUCCESS_THRESHOLD)


def test_the_breaker_counts_requests_not_attempts(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=3)
    fake_time(app)
    for _ in range(2):
        for _ in range(4):
            ordered.post(DATABRICKS_URL, status=503, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, status=503, json=OVERLOADED)
    ordered.post(DATABRICKS_URL, json=make_message())
    client = app.test_client()
    assert client.post("/v1/messages", json=make_request()).status_code == 503
    assert client.post("/v1/messages", json=make_request()).status_code == 503
    breaker = app.extensions["lynkr"].breakers.get("databricks")
    assert (breaker.snapshot()["state"], breaker.snapshot()["failures"]) == ("CLOSED", 2)  # 8 attempts, 2 requests
    assert client.post("/v1/messages", json=make_request()).status_code == 200  # a blip a retry rode out
    assert breaker.snapshot()["failures"] == 0
    assert len(ordered.calls) == 10


def test_a_request_waits_for_anothers_probe_then_goes(make_app: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0, breaker_failure_threshold=1,
                        breaker_success_threshold=1)
    breaker = app.extensions["lynkr"].breakers.get("databricks")
    breaker.record_failure()
    assert breaker.allow(last_resort=True)  # another request holds the probe
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            breaker.record_success()  # the probe's verdict arrives while this request waits

    app.extensions["lynkr"].orchestrator.candidates.sleep = sleep
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        response = app.test_client().post("/v1/messages", json=make_request())
        assert len(mocked.calls) == 1
    assert response.status_code == 200
    assert slept == [0.05, 0.05, 0.05]
    assert breaker.snapshot()["state"] == "CLOSED"


def test_a_request_that_waited_out_its_budget_for_a_probe_gets_503_with_retry_after(make_app: Any) -> None:
    app = make_fast_app(make_app, retry_max_retries=0, breaker_failure_threshold=1,
                        breaker_recovery_timeout_ms=45_000, retry_budget_ms=1_000)
    clock = fake_time(app)
    breaker = app.extensions["lynkr"].breakers.get("databricks")
    breaker.record_failure()
    assert breaker.allow(last_resort=True)  # a probe that never answers
    with responses.RequestsMock() as mocked:
        response = app.test_client().post("/v1/messages", json=make_request())
        assert len(mocked.calls) == 0
    assert response.status_code == 503
    assert "circuit breaker is open" in response.get_json()["error"]["message"]
    assert response.headers["retry-after"] == "1"  # half-open: the probe's verdict is close
    assert 0.9 < sum(clock.sleeps) <= 1.0  # it looked every 50 ms for the budget's 1 s
    assert set(clock.sleeps) == {0.05}


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


def test_when_every_candidate_fails_the_row_names_the_last_one_with_its_own_model(make_app: Any,
                                                                                  ordered: Any) -> None:
    from app.storage.db import db
    from app.storage.models import ClientRequest

    app = make_fast_app(make_app, retry_max_retries=0, model_provider="openai", openai_api_key="sk-test-1234567",
                        openai_model="gpt-test", fallback_enabled=True, fallback_provider="databricks")
    ordered.post(OPENAI_URL, status=503, json={"error": {"message": "down"}})
    ordered.post(DATABRICKS_URL, status=503, json={"type": "error", "error": {"type": "overloaded_error",
                                                                              "message": "down too"}})
    response = app.test_client().post("/v1/messages", json=make_request(), headers={"x-request-id": "req-both"})
    assert response.status_code == 503
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req-both")
        assert (row.provider, row.model, row.status) == ("databricks", "databricks-claude-sonnet-4-5", 503)


def test_openai_usage_row_records_each_attempt(make_app: Any, ordered: Any) -> None:
    from app.storage.db import db
    from app.storage.models import ClientRequest, UpstreamAttempt

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


def wait_for_no_readers(timeout_s: float = 2.0) -> None:
    """Wait until no upstream reader of an earlier stream is still winding down in this process."""
    deadline = time.monotonic() + timeout_s
    while open_sources() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_sources() == 0


def test_open_streams_shed_new_requests(make_app: Any) -> None:
    wait_for_no_readers()
    with FakeAnthropicUpstream() as upstream:
        app = make_fast_app(make_app, databricks_api_base=upstream.url, databricks_endpoint_path="/v1/messages",
                            max_in_flight_streams=1)
        events = [ev.message_start(), ev.text_start(), *(ev.text_delta(f"{n} ") for n in range(100)),
                  ev.block_stop(), *ev.message_end()]
        upstream.script(StreamReply(events, event_delay=0.05))
        client = app.test_client()
        open_stream = client.post("/v1/messages", json=make_request(stream=True), buffered=False)
        next(iter(open_stream.response))  # the stream is open and its reader running
        shed = client.post("/v1/messages", json=make_request())
        open_stream.close()
        assert len(upstream.requests) == 1
    wait_for_no_readers()
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "5"
    assert shed.get_json()["error"]["type"] == "overloaded_error"
    assert "overloaded (streams)" in shed.get_json()["error"]["message"]
    assert value(scrape(client), "lynkr_shed_requests_total", reason="streams") == 1


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


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
WITH_IMAGE = [{"role": "user", "content": [IMAGE, {"type": "text", "text": "What is this?"}]}]
OVER_128K = [{"role": "user", "content": "word " * 105_000}]  # ~150k estimated tokens: over gpt-4o's 128k
OPENAI_FIRST = {"model_provider": "openai", "openai_api_key": "sk-test-1234567", "fallback_enabled": True,
                "fallback_provider": "databricks", "retry_max_retries": 0}


def test_an_image_skips_a_candidate_without_vision(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, **OPENAI_FIRST, openai_model="gpt-oss-120b")
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request(messages=WITH_IMAGE))
    assert response.status_code == 200
    assert [c.request.url for c in ordered.calls] == [DATABRICKS_URL]
    assert json.loads(ordered.calls[0].request.body)["messages"][0]["content"][0] == IMAGE
    assert (response.headers["X-Lynkr-Provider"], response.headers["X-Lynkr-Route-Reason"]) == (
        "databricks", "fallback")


def test_a_prompt_over_a_context_window_goes_to_the_next_candidate(make_app: Any, ordered: Any) -> None:
    app = make_fast_app(make_app, **OPENAI_FIRST, openai_model="gpt-4o")
    ordered.post(DATABRICKS_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request(messages=OVER_128K))
    assert response.status_code == 200
    assert [c.request.url for c in ordered.calls] == [DATABRICKS_URL]
    assert response.headers["X-Lynkr-Provider"] == "databricks"


def openai_answers(**reply: Any) -> Callable[[Flask, Any], None]:
    """The primary, OpenAI, answers with ``reply`` (``responses`` keywords)."""
    return lambda app, mocked: mocked.post(OPENAI_URL, **reply)


def open_openai_breaker(app: Flask, mocked: Any) -> None:
    for _ in range(5):
        app.extensions["lynkr"].breakers.get("openai").record_failure()


def ollama_without_tools(app: Flask, mocked: Any) -> None:
    mocked.post(SHOW_URL, json={"capabilities": ["completion"]})


def nothing(app: Flask, mocked: Any) -> None:
    """The primary is never called."""


OLLAMA_FIRST = {"model_provider": "ollama", "ollama_endpoint": OLLAMA_ENDPOINT}


FALLBACK_CASES = [
    ("rate_limited", {}, openai_answers(status=429, json={"error": {"message": "slow"}}), {},
     [("openai", 429, "static"), ("databricks", 200, "fallback:rate_limited")]),
    ("service_unavailable", {}, openai_answers(status=503, json={"error": {"message": "down"}}), {},
     [("openai", 503, "static"), ("databricks", 200, "fallback:service_unavailable")]),
    ("timeout", {}, openai_answers(body=requests.ReadTimeout("read timed out")), {},
     [("openai", 504, "static"), ("databricks", 200, "fallback:timeout")]),
    ("error", {}, openai_answers(status=500, json={"error": {"message": "oops"}}), {},
     [("openai", 500, "static"), ("databricks", 200, "fallback:error")]),
    ("not_configured", {"openai_api_key": ""}, nothing, {}, [("databricks", 200, "fallback:not_configured")]),
    ("circuit_breaker", {}, open_openai_breaker, {}, [("databricks", 200, "fallback")]),
    ("vision_incompatible", {"openai_model": "gpt-oss-120b"}, nothing, {"messages": WITH_IMAGE},
     [("databricks", 200, "fallback")]),
    ("context_too_long", {}, nothing, {"messages": OVER_128K}, [("databricks", 200, "fallback")]),
    ("tool_incompatible", OLLAMA_FIRST, ollama_without_tools, {"tools": [READ]}, [("databricks", 200, "fallback")]),
]


@pytest.mark.parametrize(("reason", "settings", "primary", "request_overrides", "attempts"), FALLBACK_CASES,
                         ids=[case[0] for case in FALLBACK_CASES])
def test_each_fallback_reason_is_counted_and_recorded(make_app: Any, ordered: Any, reason: str,
                                                      settings: dict[str, Any], primary: Callable[[Flask, Any], None],
                                                      request_overrides: dict[str, Any],
                                                      attempts: list[tuple[str, int, str]]) -> None:
    from app.storage.db import db
    from app.storage.models import ClientRequest, UpstreamAttempt

    app = make_fast_app(make_app, **{**OPENAI_FIRST, **settings})
    primary(app, ordered)
    ordered.post(DATABRICKS_URL, json=make_message())
    client = app.test_client()
    response = client.post("/v1/messages", json=make_request(**request_overrides), headers={"x-request-id": reason})
    assert (response.status_code, response.headers["X-Lynkr-Provider"]) == (200, "databricks")

    source = settings.get("model_provider", "openai")
    assert value(scrape(client), "lynkr_fallbacks_total", from_provider=source, to_provider="databricks",
                 reason=reason) == 1
    assert client.get("/metrics/observability").get_json()["fallback"]["reasons"] == {reason: 1}
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == reason)
        rows = UpstreamAttempt.select().where(UpstreamAttempt.request == row.id).order_by(UpstreamAttempt.attempt)
        assert [(a.provider, a.status, a.route_reason) for a in rows] == attempts
