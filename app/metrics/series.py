"""The Prometheus series Lynkr exports: names, labels, buckets and multiprocess modes.

One :class:`Series` holds every family. In single-process mode (``flask run``, the test client)
each app gets its own registry, so ``create_app()`` can run many times in one process. Under
``lynkr serve`` (``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` is imported) the
values live in per-process mmap files that :class:`~prometheus_client.multiprocess.MultiProcessCollector`
sums across workers; the families are then registered nowhere and made once per process,
because two value objects for one series in one process would overwrite each other's file slot.

Gauges state how workers combine: active streams add up over live workers (``livesum``); the
breaker state is shared memory every worker reads, so the last value written wins
(``livemostrecent``) and the scrape writes it fresh.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUEST_LABELS = ("method", "route", "status")
# Seconds. Streams to Claude Code run for minutes, so the top buckets reach ten minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                    300.0, 600.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation")
# Anthropic usage keys → the ``kind`` label.
USAGE_KINDS = {"input_tokens": "input", "output_tokens": "output", "cache_read_input_tokens": "cache_read",
               "cache_creation_input_tokens": "cache_creation"}
BREAKER_STATES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}


class Series:
    """Every metric family, registered in ``registry`` (None: in no registry, multiprocess)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry
        # The Node Lynkr's names, so existing dashboards keep working.
        self.requests = Counter("http_requests_total", "HTTP requests by method, route template and status.",
                                REQUEST_LABELS, registry=r)
        self.request_errors = Counter("http_request_errors_total", "HTTP requests answered with status >= 400.",
                                      REQUEST_LABELS, registry=r)
        self.request_duration = Histogram(
            "http_request_duration_seconds", "Time from request to the last byte of the response sent.",
            REQUEST_LABELS, buckets=DURATION_BUCKETS, registry=r)
        self.active_streams = Gauge("lynkr_active_streams", "SSE responses being sent now.",
                                    registry=r, multiprocess_mode="livesum")
        self.shed = Counter("lynkr_shed_requests_total", "Requests refused to protect the service, by reason.",
                            ("reason",), registry=r)
        self.upstream_calls = Counter("lynkr_upstream_calls_total", "Upstream calls by provider, model and outcome.",
                                      ("provider", "model", "outcome"), registry=r)
        self.upstream_duration = Histogram(
            "lynkr_upstream_call_duration_seconds",
            "Upstream call time: to the full answer, or for a stream to its response headers.",
            ("provider",), buckets=UPSTREAM_BUCKETS, registry=r)
        self.retries = Counter("lynkr_upstream_retries_total", "Upstream calls retried, by the failed call's outcome.",
                               ("provider", "outcome"), registry=r)
        self.fallbacks = Counter("lynkr_fallbacks_total", "Hand-overs to the next candidate provider, by reason.",
                                 ("from_provider", "to_provider", "reason"), registry=r)
        self.fallback_results = Counter("lynkr_fallback_results_total",
                                        "Requests that fell back, by whether a later candidate answered.",
                                        ("result",), registry=r)
        self.routed = Counter("lynkr_routed_requests_total", "Model requests by the provider that took them last "
                              "and why it was chosen.", ("provider", "reason"), registry=r)
        self.breaker_state = Gauge("lynkr_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, "
                                   "2 open.", ("provider",), registry=r, multiprocess_mode="livemostrecent")
        self.tokens = Counter("lynkr_tokens_total", "Tokens by provider, model and kind "
                              "(input, output, cache_read, cache_creation).", ("provider", "model", "kind"), registry=r)
        self.cost = Counter("lynkr_cost_usd_total", "Estimated spend in US dollars.", ("provider", "model"),
                            registry=r)
        self.cost_savings = Counter("lynkr_cost_savings_usd_total",
                                    "Estimated US dollars saved by routing to a cheaper provider.", ("provider",),
                                    registry=r)
        self.cache = Counter("lynkr_prompt_cache_lookups_total", "Prompt cache lookups by result (hit, miss).",
                             ("result",), registry=r)


_process_series: tuple[int, Series] | None = None


def process_series() -> Series:
    """This process's unregistered families for multiprocess mode (remade after ``fork``)."""
    global _process_series
    if _process_series is None or _process_series[0] != os.getpid():
        _process_series = (os.getpid(), Series(None))
    return _process_series[1]
