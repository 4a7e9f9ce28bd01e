"""The exported families: names, labels, buckets, one registry per app and one set per process."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from app.metrics import series as series_module
from app.metrics.series import DURATION_BUCKETS, UPSTREAM_BUCKETS, Series, process_series


def test_every_family_is_registered_under_its_exported_name() -> None:
    registry = CollectorRegistry()
    Series(registry)
    assert sorted(metric.name for metric in registry.collect()) == [
        "http_request_duration_seconds", "http_request_errors", "http_requests",
        "lynkr_active_streams", "lynkr_circuit_breaker_state", "lynkr_cost_savings_usd", "lynkr_cost_usd",
        "lynkr_fallback_results", "lynkr_fallbacks", "lynkr_prompt_cache_lookups", "lynkr_routed_requests",
        "lynkr_shed_requests", "lynkr_tokens", "lynkr_upstream_call_duration_seconds", "lynkr_upstream_calls",
        "lynkr_upstream_retries",
    ]


def test_values_appear_with_their_labels_in_the_exposition() -> None:
    registry = CollectorRegistry()
    series = Series(registry)
    series.requests.labels("POST", "/v1/messages", "200").inc()
    series.tokens.labels("databricks", "m", "cache_read").inc(7)
    series.breaker_state.labels("ollama").set(2)
    series.request_duration.labels("POST", "/v1/messages", "200").observe(0.2)
    text = generate_latest(registry).decode()
    assert 'http_requests_total{method="POST",route="/v1/messages",status="200"} 1.0' in text
    assert 'lynkr_tokens_total{kind="cache_read",model="m",provider="databricks"} 7.0' in text
    assert 'lynkr_circuit_breaker_state{provider="ollama"} 2.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/messages",status="200"} 0.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.25",method="POST",route="/v1/messages",status="200"} 1.0' in text


def test_buckets_reach_ten_minutes_and_each_app_has_its_own_registry() -> None:
    assert DURATION_BUCKETS[-1] == 600.0
    assert UPSTREAM_BUCKETS[-1] == 300.0
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)
    registry = CollectorRegistry()
    Series(registry)
    Series(CollectorRegistry())
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Series(registry)


def test_the_process_series_is_made_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series_module, "_process_series", None)
    first = process_series()
    assert process_series() is first
    monkeypatch.setattr(series_module.os, "getpid", lambda: -1)  # as after a fork
    assert process_series() is not first  # and no registry refused the second set
