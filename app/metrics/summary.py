"""``/metrics/observability``: the Node Lynkr's JSON view, derived from the Prometheus families.

It reads the same collected families ``/metrics/prometheus`` exports — under ``lynkr serve``
the multiprocess collector's sums over every worker — so both views agree with each other and
with several workers. Nothing here keeps raw latencies: p50/p95/p99 are estimated from the
duration histogram's buckets the way PromQL's ``histogram_quantile`` does (linear within the
bucket), and say so with ``"estimated": true``. Pure: families in, a dict out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from app.metrics.series import TOKEN_KINDS

LATENCY_ROUTE = "/v1/messages"
QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}

Samples = dict[str, list[tuple[dict[str, str], float]]]


def index(families: Iterable[Metric]) -> Samples:
    """Samples by sample name (``http_requests_total``, ``…_bucket``), as (labels, value)."""
    samples: Samples = defaultdict(list)
    for family in families:
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **match: str) -> float:
    """The sum of ``name``'s samples whose labels include ``match``."""
    return sum(value for labels, value in samples.get(name, ()) if _matches(labels, match))


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    """``name``'s samples summed per value of ``label``, sorted by that value."""
    sums: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, ()):
        if _matches(labels, match):
            sums[labels.get(label, "")] += value
    return dict(sorted(sums.items()))


def _matches(labels: dict[str, str], match: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate the ``q`` quantile from cumulative ``(upper bound, count)`` buckets, like PromQL.

    Linear interpolation inside the bucket that holds the rank; the first bucket starts at 0;
    a rank in the ``+Inf`` bucket returns the largest finite bound. None without observations.
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def latency(samples: Samples, route: str = LATENCY_ROUTE) -> dict[str, Any]:
    """Request count, mean and estimated p50/p95/p99 in milliseconds for one route template."""
    cumulative: dict[float, float] = defaultdict(float)
    for labels, value in samples.get("http_request_duration_seconds_bucket", ()):
        if labels.get("route") == route:
            cumulative[float(labels["le"])] += value
    count = total(samples, "http_request_duration_seconds_count", route=route)
    seconds = total(samples, "http_request_duration_seconds_sum", route=route)
    result: dict[str, Any] = {"route": route, "count": round(count),
                              "mean_ms": _ms(seconds / count) if count else None}
    for key, q in QUANTILES.items():
        estimate = quantile(q, list(cumulative.items()))
        result[key] = None if estimate is None else _ms(estimate)
    result["estimated"] = True
    return result


def observability(families: Iterable[Metric]) -> dict[str, Any]:
    """The JSON body of ``/metrics/observability``."""
    s = index(families)
    return {
        "requests": _requests(s),
        "latency": latency(s),
        "tokens": _tokens(s),
        "cost": {"total_usd": _usd(total(s, "lynkr_cost_usd_total")),
                 "by_provider": {k: _usd(v) for k, v in by_label(s, "lynkr_cost_usd_total", "provider").items()}},
        "providers": _providers(s),
        "routing": {"by_provider": _ints(by_label(s, "lynkr_routed_requests_total", "provider")),
                    "by_reason": _ints(by_label(s, "lynkr_routed_requests_total", "reason"))},
        "fallback": _fallback(s),
        "cost_savings": {
            "total_usd": _usd(total(s, "lynkr_cost_savings_usd_total")),
            "by_provider": {k: _usd(v) for k, v in by_label(s, "lynkr_cost_savings_usd_total", "provider").items()},
            "cache_hits": round(total(s, "lynkr_prompt_cache_lookups_total", result="hit")),
            "cache_misses": round(total(s, "lynkr_prompt_cache_lookups_total", result="miss")),
        },
    }


def _requests(s: Samples) -> dict[str, Any]:
    by_route: dict[str, float] = defaultdict(float)
    for labels, value in s.get("http_requests_total", ()):
        by_route[f"{labels.get('method')} {labels.get('route')}"] += value
    return {
        "total": round(total(s, "http_requests_total")),
        "errors": round(total(s, "http_request_errors_total")),
        "by_status": _ints(by_label(s, "http_requests_total", "status")),
        "by_route": _ints(dict(sorted(by_route.items()))),
        "active_streams": round(total(s, "lynkr_active_streams")),
        "shed": _ints(by_label(s, "lynkr_shed_requests_total", "reason")),
    }


def _tokens(s: Samples) -> dict[str, int]:
    kinds = by_label(s, "lynkr_tokens_total", "kind")
    counts = {kind: round(kinds.get(kind, 0)) for kind in TOKEN_KINDS}
    return {**counts, "total": counts["input"] + counts["output"]}


def _providers(s: Samples) -> dict[str, dict[str, int]]:
    calls = s.get("lynkr_upstream_calls_total", [])
    names = {labels["provider"] for labels, _ in calls} | {labels["provider"] for labels, _ in
                                                           s.get("lynkr_upstream_retries_total", [])}
    result = {}
    for name in sorted(names):
        success = total(s, "lynkr_upstream_calls_total", provider=name, outcome="success")
        result[name] = {"success": round(success),
                        "failure": round(total(s, "lynkr_upstream_calls_total", provider=name) - success),
                        "retries": round(total(s, "lynkr_upstream_retries_total", provider=name))}
    return result


def _fallback(s: Samples) -> dict[str, Any]:
    return {"attempts_total": round(total(s, "lynkr_fallbacks_total")),
            "successes_total": round(total(s, "lynkr_fallback_results_total", result="success")),
            "failures_total": round(total(s, "lynkr_fallback_results_total", result="failure")),
            "reasons": _ints(by_label(s, "lynkr_fallbacks_total", "reason"))}


def _ints(values: dict[str, float]) -> dict[str, int]:
    return {key: round(value) for key, value in values.items()}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _usd(value: float) -> float:
    return round(value, 6)
