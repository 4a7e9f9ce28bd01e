"""Usage rows: one per client request, one per upstream attempt, written with prepared SQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.accounting.usage import Attempt, RequestRecord, write_record
from app.storage.db import db
from app.storage.models import ClientRequest, UpstreamAttempt


@pytest.fixture
def database(app: Flask) -> Any:
    with db.connection_context():
        yield db


def record(request_id: str, *attempts: Attempt, status: int = 200) -> RequestRecord:
    return RequestRecord(request_id=request_id, path="/v1/messages", session_id="s", api_key="key_a",
                         model_requested="claude-sonnet-4-5", provider=attempts[-1].provider if attempts else None,
                         model="m", stream=True, status=status, route_reason="static", duration_ms=12.5,
                         usage={"input_tokens": 10, "output_tokens": 3}, attempts=list(attempts), cost_usd=0.25)


def check_rows_are_written_with_every_field() -> None:
    write_record(record("req_1", Attempt("ollama", "llama", 503, "overloaded_error", "fallback", latency_ms=4.0),
                        Attempt("databricks", "m", 200, None, "static", {"input_tokens": 10, "output_tokens": 3},
                                latency_ms=9.0, cost_usd=0.25)))
    row = ClientRequest.get(ClientRequest.request_id == "req_1")
    assert (row.session_id, row.api_key, row.path, row.model_requested, row.provider, row.model, row.stream,
            row.status, row.route_reason, row.input_tokens, row.output_tokens, row.cache_read_input_tokens,
            row.duration_ms, row.cost_usd) == ("s", "key_a", "/v1/messages", "claude-sonnet-4-5", "databricks",
                                               "m", True, 200, "static", 10, 3, 0, 12.5, 0.25)
    rows = UpstreamAttempt.select().where(UpstreamAttempt.request == row.id).order_by(UpstreamAttempt.attempt)
    attempts = [(a.attempt, a.provider, a.status, a.error_type, a.route_reason, a.input_tokens, a.latency_ms)
                for a in rows]
    assert attempts == [(1, "ollama", 503, "overloaded_error", "fallback", 0, 4.0),
                        (2, "databricks", 200, None, "static", 10, 9.0)]


def check_a_reused_request_id_keeps_the_first_row_and_never_moves_attempts() -> None:
    write_record(record("req_a", Attempt("databricks", "m", 200)))
    write_record(record("req_b", Attempt("databricks", "m", 200)))
    # The client sent X-Request-ID req_a again: the row stays the first one, and its attempts
    # attach to no other request (SQLite's lastrowid would still name req_b's row here).
    write_record(record("req_a", Attempt("openai", "gpt", 500), status=502))
    assert ClientRequest.get(ClientRequest.request_id == "req_a").status == 200
    counts = {r.request_id: r.attempts.count() for r in ClientRequest.select().where(
        ClientRequest.request_id.in_(["req_a", "req_b"]))}
    assert counts == {"req_a": 1, "req_b": 1}


def test_rows_are_written_with_every_field(database: Any) -> None:
    check_rows_are_written_with_every_field()


def test_a_reused_request_id_keeps_the_first_row_and_never_moves_attempts(database: Any) -> None:
    check_a_reused_request_id_keeps_the_first_row_and_never_moves_attempts()
