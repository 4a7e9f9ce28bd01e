"""Operational views: ``/metrics/circuit-breakers`` (state of every provider's breaker)."""

from __future__ import annotations

from flask import Blueprint, Response

from app.blueprints.messages import json_response
from app.services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics/circuit-breakers")
def circuit_breakers() -> Response:
    """State, counts, last failure and next attempt per provider."""
    return json_response({"breakers": services().breakers.snapshots()})
