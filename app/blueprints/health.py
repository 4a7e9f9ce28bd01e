"""Health probes: ``/health`` and ``/health/live`` (process up), ``/health/ready`` (can serve).

``/health/ready?deep=true`` also calls the provider; with keys set it needs one (an open door would
let anyone make the gateway spend upstream calls), and the probe's answer is reused for
``HEALTH_DEEP_CACHE_MS``, so the upstream is called at most once per window per worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from app.blueprints.messages import json_response
from app.host import memory_status
from app.logging import redact_value
from app.providers.base import Provider
from app.storage.db import ping
from app.web.services import services

bp = Blueprint("health", __name__)
DEEP_PROBE = "lynkr.deep_probe"


class DeepProbe:
    """The provider probe of deep readiness, reused for ``ttl_s`` seconds (one probe at a time)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, Any]] | None = None

    def result(self, provider: Provider) -> dict[str, Any]:
        """The last probe's answer while it is fresh, else a new probe's (secrets masked)."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last[0] < self.ttl_s:
                return {**self._last[1], "probed_ms_ago": round((now - self._last[0]) * 1000)}
            answer: dict[str, Any] = redact_value(provider.probe())
            self._last = (self.clock(), answer)
            return {**answer, "probed_ms_ago": 0}


def _deep_probe() -> DeepProbe:
    probe = current_app.extensions.get(DEEP_PROBE)
    if probe is None:
        probe = current_app.extensions.setdefault(DEEP_PROBE, DeepProbe(services().config.health_deep_cache_ms / 1000))
    return probe


@bp.get("/health")
@bp.get("/health/live")
def live() -> Response:
    """The process is up and a thread is free."""
    return json_response({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    """Database, memory, drain state and provider configuration; 503 when any fails.

    ``?deep=true`` also probes the configured provider with a real request.
    """
    svc = services()
    provider = svc.provider
    missing = provider.missing_settings()
    checks: dict[str, dict[str, object]] = {
        "database": ping(),
        "memory": memory_status(svc.config.memory_threshold),
        "draining": {"ok": not svc.drain.draining},
        "provider": {"ok": not missing, "name": provider.name,
                     **({"missing": missing, "message": "set " + ", ".join(missing)} if missing else {})},
    }
    if request.args.get("deep", "").lower() in {"1", "true", "yes"}:
        svc.keys.check(request.headers)
        if not missing:
            checks["provider"] = {**checks["provider"], **_deep_probe().result(provider)}
    ok = all(check.get("ok") for check in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
