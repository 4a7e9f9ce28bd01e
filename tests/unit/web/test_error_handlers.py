"""Error handlers: the envelope with request_id, and the refusal row written once, only when no exchange began."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from flask import Flask

from app.errors import InvalidRequestError, LynkrError
from app.storage.db import db
from app.storage.models import ClientRequest
from app.web.error_handlers import EXCHANGE_BEGUN, error_response, record_refusal


def recorded(app: Flask) -> list[tuple[str, int, str]]:
    assert app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        return [(r.request_id, r.status, r.error_type) for r in ClientRequest.select().order_by(ClientRequest.id)]


def test_an_upstream_body_without_request_id_gets_the_request_s_and_one_with_it_keeps_its_own(app: Flask) -> None:
    upstream = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    with app.test_request_context("/v1/messages", environ_base={"lynkr.request_id": "req_ours"}):
        added = error_response(LynkrError("busy", status=529, body=upstream))
        kept = error_response(LynkrError("busy", status=529, body={**upstream, "request_id": "req_theirs"}))
        ours = error_response(InvalidRequestError("bad", headers={"x-should-retry": "false"}))
    assert orjson.loads(added.get_data()) == {**upstream, "request_id": "req_ours"}
    assert orjson.loads(kept.get_data())["request_id"] == "req_theirs"
    assert orjson.loads(ours.get_data()) == {"type": "error", "request_id": "req_ours",
                                             "error": {"type": "invalid_request_error", "message": "bad"}}
    assert (ours.status_code, ours.headers["x-should-retry"]) == (400, "false")


def test_a_refusal_is_recorded_once_with_what_the_body_said(app: Flask) -> None:
    body: dict[str, Any] = {"model": "m" * 300, "stream": True, "metadata": {"user_id": "session_abc"}}
    environ = {"lynkr.request_id": "req_refused", "lynkr.body": body, "lynkr.api_key": "key_1",
               "lynkr.started": 0.0}
    with app.test_request_context("/v1/messages", method="POST", environ_base=environ):
        record_refusal(429, "rate_limit_error")
        record_refusal(429, "rate_limit_error")
    assert recorded(app) == [("req_refused", 429, "rate_limit_error")]
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req_refused")
    assert (row.model_requested, row.stream, row.api_key, row.path) == ("m" * 128, True, "key_1", "/v1/messages")
    assert row.duration_ms > 0


@pytest.mark.parametrize(("path", "environ"), [
    ("/v1/messages", {EXCHANGE_BEGUN: True}),  # the orchestrator writes this one's row
    ("/v1/messages/count_tokens", {}),
    ("/health/live", {}),
])
def test_no_refusal_row_once_the_exchange_began_or_off_the_messages_path(app: Flask, path: str,
                                                                        environ: dict[str, Any]) -> None:
    with app.test_request_context(path, method="POST", environ_base={"lynkr.request_id": "req_x", **environ}):
        record_refusal(400, "invalid_request_error")
    assert recorded(app) == []
