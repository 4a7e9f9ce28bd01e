"""Metrics through the Flask test client: what /metrics/prometheus and /metrics/observability say
after real requests, per-app registries, METRICS_ENABLED=false, and the pieces behind them."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from flask import Flask, Response
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.accounting.pricing import PriceTable
from app.errors import (
    ConnectFailedError,
    ConnectionBrokenError,
    ConnectRefusedError,
    ConnectTimeoutError,
    LynkrError,
    ReadTimeoutError,
)
from app.metrics.multiproc import prepare
from app.metrics.recorder import NULL_METRICS, BoundedLabel, Metrics, NullMetrics, outcome_of
from app.metrics.summary import quantile
from app.web.middleware import RequestLifecycle
from tests.conftest import AZURE_URL, DATABRICKS_URL

MESSAGE = {"id": "msg_up1", "type": "message", "role": "assistant", "model": "databricks-claude-sonnet-4-5",
           "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 5}}
REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/metrics/prometheus`` parsed: {(sample name, labels): value}."""
    response = client.get("/metrics/prometheus", buffered=True)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (sample, got), v in samples.items() if sample == name and wanted <= got)


def post_message(client: FlaskClient, text: str = "Hello", **overrides: Any) -> Any:
    """POST /v1/messages; requests with different ``text`` are never answered by the prompt cache."""
    body = {**REQUEST, "messages": [{"role": "user", "content": text}], **overrides}
    return client.post("/v1/messages", json=body, buffered=True)


@pytest.fixture
def mocked_databricks_message() -> Iterator[responses.RequestsMock]:
    """Databricks answers every request with ``MESSAGE``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(DATABRICKS_URL, json=MESSAGE)
        yield mocked


# -- /metrics/prometheus -----------------------------------------------------------------------------


def test_request_counters_move_as_requests_are_made(client: FlaskClient,
                                                    mocked_databricks_message: responses.RequestsMock) -> None:
    for _ in range(3):
        assert client.get("/health/live", buffered=True).status_code == 200
    for n in range(2):
        assert post_message(client, f"Hello {n}").status_code == 200

    samples = scrape(client)
    assert value(samples, "http_requests_total", method="POST", route="/v1/messages", status="200") == 2
    assert value(samples, "http_requests_total", method="GET", route="/health/live", status="200") == 3
    assert value(samples, "http_request_duration_seconds_count", route="/v1/messages") == 2
    assert value(samples, "http_request_errors_total") == 0

    post_message(client, "Hello again")
    assert value(scrape(client), "http_requests_total", route="/v1/messages") == 3


def test_errors_are_counted_with_their_status(client: FlaskClient) -> None:
    assert client.post("/v1/messages", data=b"{not json", content_type="application/json",
                       buffered=True).status_code == 400

    samples = scrape(client)
    assert value(samples, "http_request_errors_total", method="POST", route="/v1/messages", status="400") == 1
    assert value(samples, "http_requests_total", route="/v1/messages", status="400") == 1


def test_route_label_is_the_template_never_the_raw_path(client: FlaskClient) -> None:
    for path in ("/nope/1", "/nope/2", "/v1/messages/whatever"):
        assert client.get(path, buffered=True).status_code == 404
    assert client.open("/health/live", method="BREW", buffered=True).status_code == 405

    samples = scrape(client)
    routes = {dict(labels)["route"] for (name, labels) in samples if name == "http_requests_total"}
    assert not any(route.startswith("/nope") for route in routes)
    assert value(samples, "http_requests_total", route="<unmatched>", status="404") == 3
    assert value(samples, "http_requests_total", route="<unmatched>", method="other", status="405") == 1


def test_a_request_refused_before_its_view_keeps_its_route(make_app: Any) -> None:
    # metrics_public: with keys set the scrape itself needs one (or this opt-in)
    client = make_app(api_keys=("inbound-key-0123456789",), metrics_public=True).test_client()
    assert post_message(client).status_code == 401

    assert value(scrape(client), "http_requests_total", method="POST", route="/v1/messages", status="401") == 1


def test_upstream_calls_tokens_and_routing_are_counted(client: FlaskClient,
                                                       mocked_databricks_message: responses.RequestsMock) -> None:
    assert post_message(client).status_code == 200

    samples = scrape(client)
    model = MESSAGE["model"]
    assert value(samples, "lynkr_upstream_calls_total", provider="databricks", model=model, outcome="success") == 1
    assert value(samples, "lynkr_upstream_call_duration_seconds_count", provider="databricks") == 1
    assert value(samples, "lynkr_tokens_total", provider="databricks", model=model, kind="input") == 12
    assert value(samples, "lynkr_tokens_total", kind="output") == 3
    assert value(samples, "lynkr_tokens_total", kind="cache_read") == 5
    assert value(samples, "lynkr_tokens_total", kind="cache_creation") == 0
    assert value(samples, "lynkr_routed_requests_total", provider="databricks", reason="static") == 1
    assert value(samples, "lynkr_circuit_breaker_state", provider="databricks") == 0


def test_retries_fallbacks_and_failures_are_counted(make_app: Any) -> None:
    app = make_app(retry_max_retries=1, retry_initial_delay_ms=1, retry_max_delay_ms=2,
                   fallback_enabled=True, fallback_provider="azure-anthropic")
    client = app.test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=529, json=OVERLOADED)
        mocked.post(AZURE_URL, json=MESSAGE)
        assert post_message(client).status_code == 200

    samples = scrape(client)
    assert value(samples, "lynkr_upstream_calls_total", provider="databricks", outcome="overloaded") == 2
    assert value(samples, "lynkr_upstream_retries_total", provider="databricks", outcome="overloaded") == 1
    assert value(samples, "lynkr_fallbacks_total", from_provider="databricks", to_provider="azure-anthropic",
                 reason="service_unavailable") == 1
    assert value(samples, "lynkr_fallback_results_total", result="success") == 1
    assert value(samples, "lynkr_upstream_calls_total", provider="azure-anthropic", outcome="success") == 1
    assert value(samples, "lynkr_routed_requests_total", provider="azure-anthropic", reason="fallback") == 1

    body = client.get("/metrics/observability").get_json()
    assert body["providers"] == {"azure-anthropic": {"success": 1, "failure": 0, "retries": 0},
                                 "databricks": {"success": 0, "failure": 2, "retries": 1}}
    assert body["fallback"] == {"attempts_total": 1, "successes_total": 1, "failures_total": 0,
                                "reasons": {"service_unavailable": 1}}


def test_shed_requests_are_counted_by_reason(make_app: Any, drain: Any) -> None:
    client = make_app().test_client()
    drain.start()
    assert post_message(client).status_code == 503

    assert value(scrape(client), "lynkr_shed_requests_total", reason="draining") == 1


def test_openmetrics_when_the_scraper_asks_for_it(client: FlaskClient) -> None:
    response = client.get("/metrics/prometheus", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).endswith("# EOF\n")


# -- streams are timed to their end --------------------------------------------------------------------


def make_streaming_app(metrics: Metrics, pause_s: float) -> Flask:
    """A Flask app behind RequestLifecycle whose SSE view pauses ``pause_s`` between two events."""
    flask_app = Flask(__name__)

    @flask_app.get("/slow/<int:number>")
    def slow(number: int) -> Response:
        def body() -> Iterator[bytes]:
            yield b"data: 1\n\n"
            time.sleep(pause_s)
            yield b"data: 2\n\n"

        return Response(body(), mimetype="text/event-stream")

    flask_app.wsgi_app = RequestLifecycle(flask_app.wsgi_app, log_requests=False, metrics=metrics)  # type: ignore[method-assign]
    return flask_app


def families(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text, _ = metrics.exposition()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_stream_is_timed_to_its_last_byte_and_counted_while_open() -> None:
    metrics = Metrics.create()
    client = make_streaming_app(metrics, pause_s=0.3).test_client()

    response = client.get("/slow/7")  # the view has returned; the body is not sent yet
    assert value(families(metrics), "lynkr_active_streams") == 1
    assert response.get_data() == b"data: 1\n\ndata: 2\n\n"
    response.close()

    samples = families(metrics)
    assert value(samples, "lynkr_active_streams") == 0
    assert value(samples, "http_request_duration_seconds_count", route="/slow/<int:number>") == 1
    assert value(samples, "http_request_duration_seconds_sum", route="/slow/<int:number>") >= 0.3
    assert value(samples, "http_request_duration_seconds_bucket", route="/slow/<int:number>", le="0.25") == 0


# -- /metrics/observability --------------------------------------------------------------------------


def test_observability_json_shape_is_exact(client: FlaskClient,
                                           mocked_databricks_message: responses.RequestsMock) -> None:
    post_message(client, "one")
    post_message(client, "two")
    client.get("/health/live", buffered=True)

    body = client.get("/metrics/observability").get_json()

    assert list(body) == ["requests", "latency", "tokens", "cost", "providers", "routing", "fallback",
                          "cost_savings"]
    assert set(body["requests"]) == {"total", "errors", "by_status", "by_route", "active_streams", "shed"}
    assert body["requests"]["total"] == 3
    assert body["requests"]["errors"] == 0
    assert body["requests"]["by_status"] == {"200": 3}
    assert body["requests"]["by_route"] == {"GET /health/live": 1, "POST /v1/messages": 2}
    assert body["requests"]["active_streams"] == 0
    assert body["requests"]["shed"] == {}
    latency = body["latency"]
    assert set(latency) == {"route", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "estimated"}
    assert latency["route"] == "/v1/messages"
    assert latency["count"] == 2
    assert latency["estimated"] is True
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    assert body["tokens"] == {"input": 24, "output": 6, "cache_read": 10, "cache_creation": 0, "total": 30}
    # Two answers of 12 input, 3 output and 5 cache-read tokens each, at the table's Sonnet prices.
    one = PriceTable().cost_usd("databricks-claude-sonnet-4-5", {
        "input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 5})
    assert one is not None
    assert body["cost"] == {"total_usd": pytest.approx(2 * one), "by_provider": {"databricks": pytest.approx(2 * one)}}
    assert body["providers"] == {"databricks": {"success": 2, "failure": 0, "retries": 0}}
    assert body["routing"] == {"by_provider": {"databricks": 2}, "by_reason": {"static": 2}}
    assert body["fallback"] == {"attempts_total": 0, "successes_total": 0, "failures_total": 0, "reasons": {}}
    assert set(body["cost_savings"]) == {"total_usd", "by_provider", "cache_hits", "cache_misses"}
    assert (body["cost_savings"]["total_usd"], body["cost_savings"]["by_provider"]) == (0.0, {})
    assert body["cost_savings"]["cache_hits"] == 0  # two different prompts


def test_observability_of_a_fresh_app_has_empty_latency(client: FlaskClient) -> None:
    latency = client.get("/metrics/observability").get_json()["latency"]
    assert latency == {"route": "/v1/messages", "count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None,
                       "p99_ms": None, "estimated": True}


def test_prompt_cache_lookups_are_counted(client: FlaskClient,
                                          mocked_databricks_message: responses.RequestsMock) -> None:
    assert post_message(client, "same question").headers.get("X-Lynkr-Cache") is None
    assert post_message(client, "same question").headers.get("X-Lynkr-Cache") == "hit"

    body = client.get("/metrics/observability").get_json()
    assert (body["cost_savings"]["cache_hits"], body["cost_savings"]["cache_misses"]) == (1, 1)
    assert body["routing"]["by_reason"] == {"prompt_cache": 1, "static": 1}
    assert body["providers"]["databricks"]["success"] == 1


SONNET_ON_OLLAMAS_USAGE = (20 * 3 + 3 * 15) / 1e6  # Ollama's 20 input, 3 output tokens at $3 / $15 per million


@pytest.mark.parametrize(("ollama_price", "saved"), [
    ({"input": 0, "output": 0}, SONNET_ON_OLLAMAS_USAGE),  # local and free instead of the default's Sonnet
    ({"input": 0.5, "output": 1}, SONNET_ON_OLLAMAS_USAGE - (20 * 0.5 + 3 * 1) / 1e6),
    ({"input": 100, "output": 100}, None),  # dearer than the default: no saving, never a negative one
    (None, None),  # no price for the answering model: unknown, not counted
])
def test_routing_to_a_cheaper_model_counts_as_a_saving(make_app: Any, tmp_path: Any, ollama_price: Any,
                                                        saved: float | None) -> None:
    from tests.integration.test_ollama_provider import CHAT_URL, ENDPOINT, make_answer

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"qwen*": ollama_price} if ollama_price else {}))
    client = make_app(model_provider="databricks", prefer_ollama=True, ollama_endpoint=ENDPOINT,
                      price_table_file=str(prices)).test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(CHAT_URL, json=make_answer())  # 20 input and 3 output tokens
        response = post_message(client)
    assert (response.status_code, response.headers["X-Lynkr-Provider"]) == (200, "ollama")

    savings = client.get("/metrics/observability").get_json()["cost_savings"]
    if saved is None:
        assert (savings["total_usd"], savings["by_provider"]) == (0.0, {})
    else:
        assert savings["by_provider"] == {"ollama": pytest.approx(saved, abs=1e-6)}
        assert value(scrape(client), "lynkr_cost_savings_usd_total", provider="ollama") == pytest.approx(saved)


def test_cost_and_cache_fed_by_their_functions_reach_both_views(app: Flask, client: FlaskClient) -> None:
    metrics = app.extensions["lynkr.metrics"]
    metrics.add_cost("databricks", "databricks-claude-sonnet-4-5", 0.25)
    metrics.add_cost("databricks", "databricks-claude-sonnet-4-5", 0.5)
    metrics.add_cost_savings("ollama", 0.125)
    metrics.cache_lookup(hit=True)
    metrics.cache_lookup(hit=False)
    metrics.cache_lookup(hit=False)
    metrics.shed("memory")

    samples = scrape(client)
    assert value(samples, "lynkr_cost_usd_total", provider="databricks") == 0.75
    body = client.get("/metrics/observability").get_json()
    assert body["cost"] == {"total_usd": 0.75, "by_provider": {"databricks": 0.75}}
    assert body["cost_savings"] == {"total_usd": 0.125, "by_provider": {"ollama": 0.125}, "cache_hits": 1,
                                    "cache_misses": 2}
    assert body["requests"]["shed"] == {"memory": 1}


# -- apps, registries and the switch -----------------------------------------------------------------


def test_create_app_twice_in_one_process_keeps_separate_registries(make_app: Any) -> None:
    first, second = make_app(), make_app()
    first.test_client().get("/health/live", buffered=True)
    first.test_client().get("/health/live", buffered=True)
    second.test_client().get("/health/live", buffered=True)

    assert value(scrape(first.test_client()), "http_requests_total", route="/health/live") == 2
    assert value(scrape(second.test_client()), "http_requests_total", route="/health/live") == 1


@pytest.mark.parametrize("path", ["/metrics/prometheus", "/metrics/observability", "/metrics/circuit-breakers"])
def test_metrics_disabled_turns_the_routes_off(make_app: Any, path: str) -> None:
    app = make_app(metrics_enabled=False)
    client = app.test_client()
    assert client.get("/health/live", buffered=True).status_code == 200
    assert client.get(path).status_code == 404
    assert isinstance(app.extensions["lynkr.metrics"], NullMetrics)


def test_circuit_breakers_view_still_answers(client: FlaskClient) -> None:
    body = client.get("/metrics/circuit-breakers").get_json()
    assert body["breakers"]["databricks"]["state"] == "CLOSED"


def test_null_twin_has_every_method_of_metrics() -> None:
    public = {name for name in vars(Metrics) if not name.startswith("_") and callable(getattr(Metrics, name))}
    assert public - {"create"} <= set(vars(NullMetrics))
    NULL_METRICS.observe_request("GET", "/x", 200, 0.1)
    NULL_METRICS.tokens("p", "m", {"input_tokens": 3})
    assert list(NULL_METRICS.collect()) == []


# -- the pieces --------------------------------------------------------------------------------------


def test_quantile_interpolates_inside_the_bucket_like_promql() -> None:
    buckets = [(0.1, 0.0), (1.0, 10.0), (math.inf, 10.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.55)
    assert quantile(0.99, [(0.1, 0.0), (1.0, 1.0), (math.inf, 100.0)]) == 1.0  # rank in +Inf: largest bound
    assert quantile(0.5, [(0.1, 4.0), (math.inf, 4.0)]) == pytest.approx(0.05)
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.5, []) is None


def test_model_label_is_bounded() -> None:
    label = BoundedLabel(2)
    assert [label("a"), label("b"), label("c"), label("a"), label(None)] == ["a", "b", "other", "a", "unknown"]


@pytest.mark.parametrize(("status", "transport", "outcome"), [
    (200, None, "success"), (429, None, "rate_limited"), (529, None, "overloaded"), (503, None, "overloaded"),
    (500, None, "server_error"), (400, None, "client_error"), (None, ReadTimeoutError("t"), "timeout"),
    (None, ConnectRefusedError("r"), "connect_error"), (None, ConnectFailedError("c"), "connect_error"),
    (None, ConnectTimeoutError("ct"), "connect_error"), (None, ConnectionBrokenError("b"), "connect_error"),
])
def test_upstream_outcomes(status: int | None, transport: LynkrError | None, outcome: str) -> None:
    assert outcome_of(status, transport) == outcome


def test_configured_multiprocess_dir_is_emptied_and_kept(tmp_path: Any) -> None:
    configured = tmp_path / "metrics"
    configured.mkdir()
    (configured / "counter_123.db").write_bytes(b"stale")
    (configured / "keep.txt").write_text("not ours")
    environ: dict[str, str] = {}

    metrics_dir = prepare(str(configured), environ)
    metrics_dir.cleanup()

    assert environ == {"PROMETHEUS_MULTIPROC_DIR": str(configured)}
    assert sorted(p.name for p in configured.iterdir()) == ["keep.txt"]


def test_unconfigured_multiprocess_dir_is_made_and_removed() -> None:
    environ: dict[str, str] = {}
    metrics_dir = prepare("", environ)
    assert metrics_dir.path.is_dir()
    assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir.path)
    metrics_dir.cleanup()
    assert not metrics_dir.path.exists()
