"""Stored sessions: ``GET /v1/sessions`` and ``GET /v1/sessions/<id>``, scoped to the caller's key.

A key reads the sessions it created; an admin key (``LYNKR_ADMIN_KEYS``) reads all; with no
keys configured (a loopback-only gateway) every session is readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from flask import Blueprint, Response, request
from peewee import JOIN, fn

from app.blueprints.messages import json_response
from app.errors import NotFoundError
from app.storage.models import Session, Turn
from app.storage.transcripts import session_turns
from app.web.services import services

bp = Blueprint("sessions", __name__)
MAX_LIMIT = 200


@bp.get("/v1/sessions")
def list_sessions() -> Response:
    """The caller's sessions, newest first (``?limit=`` up to 200)."""
    keys = services().keys
    caller = request.environ.get("lynkr.api_key")
    limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), MAX_LIMIT)
    query = (Session.select(Session, fn.COUNT(Turn.id).alias("turns"))
             .join(Turn, on=(Turn.session == Session.id), join_type=JOIN.LEFT_OUTER)
             .group_by(Session.id).order_by(Session.updated_at.desc()).limit(limit))
    if keys.enabled and caller not in keys.admin_ids:
        query = query.where(Session.owner == caller)
    # peewee's stubs type .dicts() as the model query itself; its rows are dicts
    rows = cast("Iterable[dict[str, Any]]", query.dicts())
    data = [{"id": row["id"], "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
             "turns": row["turns"]} for row in rows]
    return json_response({"data": data, "has_more": len(data) == limit})


@bp.get("/v1/sessions/<session_id>")
def get_session(session_id: str) -> Response:
    """One session's newest branch of turns."""
    session = Session.get_or_none(Session.id == session_id)
    if session is None or not services().keys.may_read(request.environ.get("lynkr.api_key"), session.owner):
        raise NotFoundError(f"No session {session_id!r}.")
    return json_response({"id": session.id, "created_at": session.created_at.isoformat(),
                          "updated_at": session.updated_at.isoformat(), "turns": session_turns(session.id)})
