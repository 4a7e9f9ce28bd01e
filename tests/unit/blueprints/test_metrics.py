"""Metrics views: the exposition (filtered), the JSON summary, breaker state, and who may read them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask


@pytest.fixture
def built(make_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        app = make_app(**config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["lynkr"].recorder.flush()


def test_the_exposition_counts_requests_by_route_template(built: Callable[..., Flask]) -> None:
    client = built().test_client()
    client.get("/health/live").close()  # the middleware observes a request when its body is closed
    client.get("/health/live").close()
    response = client.get("/metrics/prometheus?name[]=http_requests_total")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/health/live",status="200"} 2.0' in text
    assert "lynkr_tokens_total" not in text  # only the series asked for


def test_openmetrics_when_the_scraper_asks(built: Callable[..., Flask]) -> None:
    response = built().test_client().get("/metrics/prometheus",
                                         headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_breaker_state_is_refreshed_into_the_gauge_and_listed(built: Callable[..., Flask]) -> None:
    app = built()
    app.extensions["lynkr"].breakers.get("ollama").record_failure()
    client = app.test_client()
    breakers = client.get("/metrics/circuit-breakers").get_json()["breakers"]
    assert breakers["ollama"]["state"] == "CLOSED"
    assert breakers["ollama"]["failures"] == 1
    assert set(breakers["databricks"]) == {"state", "failures", "successes", "last_failure_at", "next_attempt_at",
                                           "probe_in_flight"}
    text = client.get("/metrics/prometheus?name[]=lynkr_circuit_breaker_state").get_data(as_text=True)
    assert 'lynkr_circuit_breaker_state{provider="ollama"} 0.0' in text


def test_the_observability_summary(built: Callable[..., Flask]) -> None:
    client = built().test_client()
    client.get("/health/live").close()
    client.get("/nowhere").close()
    body = client.get("/metrics/observability").get_json()
    assert body["requests"]["by_route"] == {"GET /health/live": 1, "GET <unmatched>": 1}
    assert body["requests"]["errors"] == 1
    assert body["latency"]["route"] == "/v1/messages"
    assert body["latency"]["count"] == 0
    assert set(body) == {"requests", "latency", "tokens", "cost", "providers", "routing", "fallback", "cost_savings"}


def test_with_keys_set_the_metrics_need_one_unless_public(built: Callable[..., Flask]) -> None:
    client = built(api_keys=("sk-metrics",)).test_client()
    for path in ("/metrics/prometheus", "/metrics/observability", "/metrics/circuit-breakers"):
        refused = client.get(path)
        assert (refused.status_code, refused.get_json()["error"]["type"]) == (401, "authentication_error")
    assert client.get("/metrics/prometheus", headers={"authorization": "Bearer sk-metrics"}).status_code == 200
    public = built(api_keys=("sk-metrics",), metrics_public=True).test_client()
    assert public.get("/metrics/observability").status_code == 200


def test_metrics_off_means_no_metrics_routes(built: Callable[..., Flask]) -> None:
    assert built(metrics_enabled=False).test_client().get("/metrics/prometheus").status_code == 404
