"""The JSON summary derived from the Prometheus families: sums, groupings and bucket quantiles."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from app.metrics.series import Series
from app.metrics.summary import by_label, index, latency, observability, quantile, total


@pytest.mark.parametrize(("q", "buckets", "expected"), [
    (0.5, [(0.1, 0), (0.5, 10), (math.inf, 10)], 0.3),
    (0.5, [(math.inf, 10), (0.5, 10), (0.1, 0)], 0.3),  # any order
    (0.25, [(1.0, 10), (math.inf, 10)], 0.25),  # the first bucket starts at 0
    (0.99, [(1.0, 5), (math.inf, 10)], 1.0),  # a rank in +Inf: the largest finite bound
    (0.0, [(1.0, 0), (2.0, 3)], 1.0),  # an empty bucket holding the rank: its bound
    (0.5, [], None),
    (0.5, [(1.0, 0), (math.inf, 0)], None),
])
def test_quantile_like_histogram_quantile(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    assert quantile(q, buckets) == (None if expected is None else pytest.approx(expected))


def populated() -> CollectorRegistry:
    registry = CollectorRegistry()
    s = Series(registry)
    s.requests.labels("POST", "/v1/messages", "200").inc(3)
    s.requests.labels("POST", "/v1/messages", "429").inc()
    s.requests.labels("GET", "/health", "200").inc(2)
    s.request_errors.labels("POST", "/v1/messages", "429").inc()
    for seconds in (0.02, 0.2, 0.2, 4.0):
        s.request_duration.labels("POST", "/v1/messages", "200").observe(seconds)
    s.request_duration.labels("GET", "/health", "200").observe(100.0)
    s.active_streams.inc(2)
    s.shed.labels("memory").inc()
    s.upstream_calls.labels("databricks", "m", "success").inc(3)
    s.upstream_calls.labels("databricks", "m", "timeout").inc()
    s.retries.labels("databricks", "timeout").inc()
    s.retries.labels("ollama", "reset").inc(2)
    s.fallbacks.labels("databricks", "ollama", "timeout").inc()
    s.fallback_results.labels("success").inc()
    s.routed.labels("databricks", "default").inc(3)
    s.routed.labels("ollama", "fallback").inc()
    s.tokens.labels("databricks", "m", "input").inc(100)
    s.tokens.labels("databricks", "m", "output").inc(20)
    s.tokens.labels("databricks", "m", "cache_read").inc(5)
    s.cost.labels("databricks", "m").inc(0.0123456789)
    s.cost_savings.labels("ollama").inc(0.5)
    s.cache.labels("hit").inc()
    s.cache.labels("miss").inc(4)
    return registry


def test_sums_and_groups_over_samples() -> None:
    samples = index(populated().collect())
    assert total(samples, "http_requests_total") == 6
    assert total(samples, "http_requests_total", method="POST") == 4
    assert total(samples, "no_such_total") == 0
    assert by_label(samples, "http_requests_total", "status") == {"200": 5.0, "429": 1.0}
    assert by_label(samples, "http_requests_total", "status", route="/health") == {"200": 2.0}


def test_latency_of_one_route() -> None:
    assert latency(index(populated().collect())) == {
        "route": "/v1/messages", "count": 4, "mean_ms": 1105.0,
        "p50_ms": 175.0, "p95_ms": 4500.0, "p99_ms": 4900.0, "estimated": True}
    assert latency(index(populated().collect()), "/nothing") == {
        "route": "/nothing", "count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None,
        "estimated": True}


def test_observability_body() -> None:
    body = observability(populated().collect())
    assert body["requests"] == {
        "total": 6, "errors": 1, "by_status": {"200": 5, "429": 1},
        "by_route": {"GET /health": 2, "POST /v1/messages": 4}, "active_streams": 2, "shed": {"memory": 1}}
    assert body["tokens"] == {"input": 100, "output": 20, "cache_read": 5, "cache_creation": 0, "total": 120}
    assert body["cost"] == {"total_usd": 0.012346, "by_provider": {"databricks": 0.012346}}
    assert body["providers"] == {"databricks": {"success": 3, "failure": 1, "retries": 1},
                                 "ollama": {"success": 0, "failure": 0, "retries": 2}}
    assert body["routing"] == {"by_provider": {"databricks": 3, "ollama": 1},
                               "by_reason": {"default": 3, "fallback": 1}}
    assert body["fallback"] == {"attempts_total": 1, "successes_total": 1, "failures_total": 0,
                                "reasons": {"timeout": 1}}
    assert body["cost_savings"] == {"total_usd": 0.5, "by_provider": {"ollama": 0.5}, "cache_hits": 1,
                                    "cache_misses": 4}
    assert body["latency"]["count"] == 4


def test_observability_of_nothing() -> None:
    body = observability(CollectorRegistry().collect())
    assert body["requests"] == {"total": 0, "errors": 0, "by_status": {}, "by_route": {}, "active_streams": 0,
                                "shed": {}}
    assert body["providers"] == {}
    assert body["tokens"]["total"] == 0
