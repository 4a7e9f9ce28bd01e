"""Operational views: ``/metrics/prometheus`` (text exposition), ``/metrics/observability`` (the
Node Lynkr's JSON summary) and ``/metrics/circuit-breakers`` (state of every provider's breaker).

Registered only with ``METRICS_ENABLED`` (the factory decides). With keys set they need one, as a
bearer token for Prometheus (``authorization: credentials``), unless ``METRICS_PUBLIC=true``. Under ``lynkr serve`` both
metric views read every worker's values, whichever worker answers the scrape.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.blueprints.messages import json_response
from app.metrics.recorder import Metrics, NullMetrics, metrics_of
from app.metrics.summary import observability as summarise
from app.web.services import services

bp = Blueprint("metrics", __name__)


@bp.before_request
def _authenticate() -> None:
    """With keys set, the metrics (traffic, cost, models) need one unless ``METRICS_PUBLIC``."""
    svc = services()
    if not svc.config.metrics_public:
        svc.keys.check(request.headers)


@bp.get("/metrics/prometheus")
def prometheus() -> Response:
    """Every series in Prometheus text format (OpenMetrics when the scraper asks for it).

    ``?name[]=http_requests_total`` restricts the output to the named series.
    """
    metrics = _refreshed()
    names = request.args.getlist("name[]") or None
    body, content_type = metrics.exposition(request.headers.get("Accept"), names)
    return Response(body, status=200, headers={"Content-Type": content_type})


@bp.get("/metrics/observability")
def observability() -> Response:
    """Requests, latency (estimated p50/p95/p99), tokens, cost, providers, routing, fallback."""
    metrics = _refreshed()
    return json_response(summarise(metrics.collect()))


@bp.get("/metrics/circuit-breakers")
def circuit_breakers() -> Response:
    """State, counts, last failure and next attempt per provider."""
    return json_response({"breakers": services().breakers.snapshots()})


def _refreshed() -> Metrics | NullMetrics:
    """The app's recorder, with the breaker gauges set from the shared breaker store.

    Breaker state lives in memory every worker shares, so the worker answering the scrape
    writes it fresh (the gauge's multiprocess mode keeps the most recent write).
    """
    metrics = metrics_of()
    for provider, snapshot in services().breakers.snapshots().items():
        metrics.breaker_state(provider, snapshot["state"])
    return metrics
