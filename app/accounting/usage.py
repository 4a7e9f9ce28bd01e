"""Usage records: one row per client request, one per upstream attempt made for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.storage.db import db
from app.storage.models import ClientRequest, UpstreamAttempt, utcnow
from app.storage.prepared import InsertRow

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
# A request id a client reuses (its own X-Request-ID) is stored once: the first request's row.
_REQUEST_ROW = InsertRow(ClientRequest, ignore_conflicts=True)
_ATTEMPT_ROW = InsertRow(UpstreamAttempt)


@dataclass
class Attempt:
    """One upstream call."""

    provider: str
    model: str
    status: int | None = None
    error_type: str | None = None
    route_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass
class RequestRecord:
    """What one client request did, filled in as it runs and written when it ends."""

    request_id: str
    path: str
    session_id: str | None = None
    api_key: str | None = None
    model_requested: str | None = None
    stream: bool = False
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    error_type: str | None = None
    route_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    duration_ms: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    cost_usd: float | None = None
    admission: Any = None  # the app.accounting.budgets.Admission held for this request, settled by Ledger.enter()
    body_bytes: int = 0  # size of the request body, which a queued transcript write keeps alive


def usage_counts(usage: dict[str, Any] | None) -> dict[str, int]:
    """The four token counts of an Anthropic ``usage`` object, missing ones as 0."""
    usage = usage or {}
    return {key: int(usage.get(key) or 0) for key in USAGE_KEYS}


def write_record(record: RequestRecord) -> None:
    """Insert the request row and its attempt rows (inside the caller's connection)."""
    now = utcnow()
    database = db.obj
    row_id = _REQUEST_ROW.execute(database, {
        "request_id": record.request_id, "session_id": record.session_id, "api_key": record.api_key,
        "path": record.path, "model_requested": record.model_requested, "provider": record.provider,
        "model": record.model, "stream": record.stream, "status": record.status,
        "error_type": record.error_type, "route_reason": record.route_reason,
        "duration_ms": record.duration_ms, "cost_usd": record.cost_usd, "created_at": now,
        **usage_counts(record.usage),
    })
    if row_id is None:
        return
    for number, a in enumerate(record.attempts, start=1):
        _ATTEMPT_ROW.execute(database, {
            "request": row_id, "attempt": number, "provider": a.provider, "model": a.model,
            "status": a.status, "error_type": a.error_type, "route_reason": a.route_reason,
            "latency_ms": a.latency_ms, "cost_usd": a.cost_usd, "created_at": now, **usage_counts(a.usage),
        })
