"""Health probes: ``/health`` and ``/health/live`` (process up), ``/health/ready`` (can serve)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.blueprints.messages import json_response
from app.host import memory_status
from app.storage.db import ping
from app.web.services import services

bp = Blueprint("health", __name__)


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
    if request.args.get("deep", "").lower() in {"1", "true", "yes"} and not missing:
        checks["provider"] = {**checks["provider"], **provider.probe()}
    ok = all(check.get("ok") for check in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
