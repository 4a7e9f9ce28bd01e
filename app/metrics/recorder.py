"""Metrics: one recorder the app calls unconditionally, and its Null twin.

:class:`Metrics` records into the Prometheus families of :mod:`app.metrics.series` and exports
them through prometheus-flask-exporter: a registry of the app's own in single-process mode, the
multiprocess collector (summing every gunicorn worker's files) under ``lynkr serve``.
:class:`NullMetrics` has the same methods and does nothing; ``METRICS_ENABLED=false`` gets it,
so callers never check whether metrics are on.

Labels stay few and bounded: the route label is the URL rule (``/v1/messages``), never the raw
path; unknown methods read ``other``; model names — which a client may choose freely — are
admitted up to :data:`MAX_MODELS` per process and read ``other`` after that. The request path
is hot, so :meth:`Metrics.observe_request` keeps the labelled children it has made.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from flask import Flask, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from app.config import Config
from app.errors import TRANSPORT_ERRORS, LynkrError, ReadTimeoutError
from app.metrics.series import BREAKER_STATES, USAGE_KINDS, Series, process_series

EXTENSION = "lynkr.metrics"
UNMATCHED = "<unmatched>"
OTHER = "other"
MAX_MODELS = 64
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsRecorder(Protocol):
    """What the middleware, the orchestrator and the views call; both classes below provide it."""

    enabled: bool

    def observe_request(self, method: str, path_template: str, status: int, duration_s: float) -> None: ...
    def stream_opened(self) -> None: ...
    def stream_closed(self) -> None: ...
    def shed(self, reason: str) -> None: ...
    def upstream_call(self, provider: str, model: str | None, outcome: str,
                      duration_s: float | None = None) -> None: ...
    def retry(self, provider: str, outcome: str) -> None: ...
    def fallback(self, source: str, target: str, reason: str) -> None: ...
    def fallback_result(self, succeeded: bool) -> None: ...
    def routed(self, provider: str, reason: str | None) -> None: ...
    def tokens(self, provider: str, model: str | None, usage: Mapping[str, Any] | None) -> None: ...
    def add_cost(self, provider: str, model: str | None, usd: float) -> None: ...
    def add_cost_savings(self, provider: str, usd: float) -> None: ...
    def cache_lookup(self, hit: bool) -> None: ...
    def breaker_state(self, provider: str, state: str) -> None: ...


class Metrics:
    """Records into Prometheus families and exports them (text and the JSON summary)."""

    enabled = True

    def __init__(self, series: Series, exporter: PrometheusMetrics) -> None:
        self.series = series
        self.exporter = exporter
        self._models = BoundedLabel(MAX_MODELS)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    @classmethod
    def create(cls) -> Metrics:
        """Per-app families and registry, or this process's families and the multiprocess collector."""
        if multiprocess_mode():
            # The exporter's registry holds only the MultiProcessCollector, which reads every
            # worker's files; the families are registered nowhere (see app.metrics.series).
            return cls(process_series(), GunicornInternalPrometheusMetrics(app=None, path=None, export_defaults=False))
        registry = CollectorRegistry(auto_describe=True)
        return cls(Series(registry), PrometheusMetrics(app=None, path=None, export_defaults=False, registry=registry))

    def init_app(self, app: Flask) -> None:
        """Make this recorder the app's (see :func:`metrics_of`)."""
        app.extensions[EXTENSION] = self

    # -- export ----------------------------------------------------------------------------------

    def exposition(self, accept: str | None = None, names: list[str] | None = None) -> tuple[str, str]:
        """The text exposition (Prometheus or OpenMetrics by ``accept``) and its content type."""
        return self.exporter.generate_metrics(accept, names)

    def collect(self) -> Iterable[Metric]:
        """Every family, summed across workers in multiprocess mode."""
        return self.exporter.registry.collect()

    # -- HTTP ------------------------------------------------------------------------------------

    def observe_request(self, method: str, path_template: str, status: int, duration_s: float) -> None:
        """Count one finished request and its duration (to the last byte sent)."""
        key = (method if method in METHODS else OTHER, path_template, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = self._children_for(key)
        total, errors, duration = children
        total.inc()
        if errors is not None:
            errors.inc()
        duration.observe(duration_s)

    def _children_for(self, key: tuple[str, str, int]) -> tuple[Any, Any, Any]:
        method, route, status = key
        labels = (method, route, str(status))
        errors = self.series.request_errors.labels(*labels) if status >= 400 else None
        return self.series.requests.labels(*labels), errors, self.series.request_duration.labels(*labels)

    def stream_opened(self) -> None:
        """An SSE response started."""
        self.series.active_streams.inc()

    def stream_closed(self) -> None:
        """An SSE response ended (completed, failed or abandoned)."""
        self.series.active_streams.dec()

    def shed(self, reason: str) -> None:
        """A request was refused to protect the service (``draining``, ``memory``, ``concurrency``...)."""
        self.series.shed.labels(reason).inc()

    # -- upstream and routing --------------------------------------------------------------------

    def upstream_call(self, provider: str, model: str | None, outcome: str, duration_s: float | None = None) -> None:
        """One upstream attempt and its outcome (see :func:`outcome_of`)."""
        self.series.upstream_calls.labels(provider, self._models(model), outcome).inc()
        if duration_s is not None:
            self.series.upstream_duration.labels(provider).observe(duration_s)

    def retry(self, provider: str, outcome: str) -> None:
        """A failed attempt is about to be retried."""
        self.series.retries.labels(provider, outcome).inc()

    def fallback(self, source: str, target: str, reason: str) -> None:
        """The orchestrator's ``on_fallback`` hook: ``source`` hands over to ``target``."""
        self.series.fallbacks.labels(source, target, reason).inc()

    def fallback_result(self, succeeded: bool) -> None:
        """A request that fell back ended: a later candidate answered, or none did."""
        self.series.fallback_results.labels("success" if succeeded else "failure").inc()

    def routed(self, provider: str, reason: str | None) -> None:
        """The provider that took a model request last, and the routing reason."""
        self.series.routed.labels(provider, reason or "unknown").inc()

    def breaker_state(self, provider: str, state: str) -> None:
        """Set a breaker's gauge from its state name (``CLOSED``, ``HALF_OPEN``, ``OPEN``)."""
        self.series.breaker_state.labels(provider).set(BREAKER_STATES.get(state, -1))

    # -- usage -----------------------------------------------------------------------------------

    def tokens(self, provider: str, model: str | None, usage: Mapping[str, Any] | None) -> None:
        """Add an Anthropic ``usage`` object's four token counts."""
        if not usage:
            return
        model_label = self._models(model)
        for key, kind in USAGE_KINDS.items():
            count = usage.get(key) or 0
            if count > 0:
                self.series.tokens.labels(provider, model_label, kind).inc(count)

    def add_cost(self, provider: str, model: str | None, usd: float) -> None:
        """Add estimated spend; the caller prices the usage."""
        if usd > 0:
            self.series.cost.labels(provider, self._models(model)).inc(usd)

    def add_cost_savings(self, provider: str, usd: float) -> None:
        """Add an estimated saving (a request served by a cheaper provider than the default)."""
        if usd > 0:
            self.series.cost_savings.labels(provider).inc(usd)

    def cache_lookup(self, hit: bool) -> None:
        """One prompt-cache lookup."""
        self.series.cache.labels("hit" if hit else "miss").inc()


class NullMetrics:
    """Same methods as :class:`Metrics`; records nothing (``METRICS_ENABLED=false``)."""

    enabled = False

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self

    def exposition(self, accept: str | None = None, names: list[str] | None = None) -> tuple[str, str]:
        return "", CONTENT_TYPE_LATEST

    def collect(self) -> Iterable[Metric]:
        return ()

    def observe_request(self, method: str, path_template: str, status: int, duration_s: float) -> None:
        pass

    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass

    def shed(self, reason: str) -> None:
        pass

    def upstream_call(self, provider: str, model: str | None, outcome: str, duration_s: float | None = None) -> None:
        pass

    def retry(self, provider: str, outcome: str) -> None:
        pass

    def fallback(self, source: str, target: str, reason: str) -> None:
        pass

    def fallback_result(self, succeeded: bool) -> None:
        pass

    def routed(self, provider: str, reason: str | None) -> None:
        pass

    def breaker_state(self, provider: str, state: str) -> None:
        pass

    def tokens(self, provider: str, model: str | None, usage: Mapping[str, Any] | None) -> None:
        pass

    def add_cost(self, provider: str, model: str | None, usd: float) -> None:
        pass

    def add_cost_savings(self, provider: str, usd: float) -> None:
        pass

    def cache_lookup(self, hit: bool) -> None:
        pass


NULL_METRICS = NullMetrics()


def build_metrics(config: Config) -> Metrics | NullMetrics:
    """The app's recorder: :class:`Metrics`, or :class:`NullMetrics` when ``METRICS_ENABLED=false``."""
    return Metrics.create() if config.metrics_enabled else NullMetrics()


def metrics_of(app: Flask | None = None) -> Metrics | NullMetrics:
    """The recorder of ``app`` (default: the current app); :data:`NULL_METRICS` if it has none."""
    return (app or current_app).extensions.get(EXTENSION, NULL_METRICS)


def multiprocess_mode() -> bool:
    """Whether values go to per-process files (``PROMETHEUS_MULTIPROC_DIR`` was set before
    ``prometheus_client`` was first imported — ``lynkr serve`` does that)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def route_template(environ: Mapping[str, Any]) -> str:
    """The URL rule that matched the request (``/v1/messages``), or ``<unmatched>`` (404, 405).

    Werkzeug keeps the request object in the environ and Flask sets its ``url_rule`` when it
    matches the URL, before any ``before_request`` function can fail. Flask clears that entry
    when it pops the request context, so call this while the context is active — from
    ``start_response``, as :class:`~app.web.middleware.RequestLifecycle` does.
    """
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    return rule.rule if rule is not None else UNMATCHED


def outcome_of(status: int | None, failure: LynkrError | None = None) -> str:
    """A bounded label for how an upstream call ended (``failure``: the error it raised)."""
    if isinstance(failure, ReadTimeoutError):
        return "timeout"
    if isinstance(failure, TRANSPORT_ERRORS):
        return "connect_error"
    if status is None or status < 400:
        return "success"
    if status == 429:
        return "rate_limited"
    if status in (503, 529):
        return "overloaded"
    return "server_error" if status >= 500 else "client_error"


class BoundedLabel:
    """Passes the first ``limit`` distinct values through; later ones read ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "unknown"
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER
