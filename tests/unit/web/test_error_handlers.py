"""Every error is Anthropic's envelope with the request id; refusals of /v1/messages get one usage row."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from app.errors import LynkrError, OverloadedError, PermissionDeniedError
from app.storage.db import db
from app.storage.models import ClientRequest
from app.web.error_handlers import error_response


@pytest.fixture
def routed(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """The app with routes that fail in each way a view can."""
    app = make_app(request_json_limit=1024)

    def refuse() -> Any:
        raise PermissionDeniedError("not yours", headers={"x-why": "owner"})

    def overloaded() -> Any:
        raise OverloadedError("busy", headers={"retry-after": "3"})

    def upstream_body() -> Any:
        raise LynkrError("Overloaded", status=529, error_type="overloaded_error",
                         body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def crash() -> Any:
        raise RuntimeError("secret detail")

    for name, view in (("refuse", refuse), ("overloaded", overloaded), ("upstream", upstream_body), ("crash", crash)):
        app.add_url_rule(f"/test/{name}", name, view, methods=["GET", "POST"])
    yield app
    app.extensions["lynkr"].recorder.flush()  # before the next test binds its own database


def envelope(response: Any) -> tuple[int, dict[str, Any]]:
    body = response.get_json()
    assert body["request_id"] == response.headers["request-id"]
    return response.status_code, {k: v for k, v in body.items() if k != "request_id"}


def test_a_lynkr_error_with_its_headers(routed: Flask) -> None:
    response = routed.test_client().get("/test/refuse")
    assert envelope(response) == (403, {"type": "error", "error": {"type": "permission_error",
                                                                    "message": "not yours"}})
    assert response.headers["x-why"] == "owner"
    assert routed.test_client().get("/test/overloaded").headers["retry-after"] == "3"


def test_an_upstreams_own_body_passes_through_with_our_request_id(routed: Flask) -> None:
    response = routed.test_client().get("/test/upstream")
    assert envelope(response) == (529, {"type": "error", "error": {"type": "overloaded_error",
                                                                    "message": "Overloaded"}})


def test_an_unhandled_exception_is_a_500_without_its_detail(
        routed: Flask, log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.errors")
    response = routed.test_client().get("/test/crash")
    assert envelope(response) == (500, {"type": "error", "error": {"type": "api_error",
                                                                    "message": "Internal server error"}})
    assert b"secret detail" not in response.get_data()
    assert [r.getMessage() for r in records if r.exc_info] == ["unhandled error"]


def test_werkzeug_errors_in_our_words(routed: Flask) -> None:
    client = routed.test_client()
    assert envelope(client.get("/nowhere")) == (404, {"type": "error", "error": {
        "type": "not_found_error", "message": "Not found: GET /nowhere"}})
    not_allowed = client.delete("/test/refuse")
    assert envelope(not_allowed) == (405, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "Method DELETE is not allowed on /test/refuse"}})
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "POST", "HEAD", "OPTIONS"}
    too_large = client.post("/v1/messages", data=b"x" * 2048, content_type="application/json")
    assert envelope(too_large) == (413, {"type": "error", "error": {
        "type": "request_too_large", "message": "Request body is larger than the limit (REQUEST_JSON_LIMIT)."}})


def test_a_refused_messages_request_gets_one_usage_row(routed: Flask) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 0, "stream": True, "messages": []}
    response = routed.test_client().post("/v1/messages", json=body, headers={"x-session-id": "sess-9"})
    assert response.status_code == 400
    assert routed.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        rows = list(ClientRequest.select())
    assert [(r.request_id, r.path, r.status, r.error_type, r.model_requested, r.stream, r.session_id)
            for r in rows] == [(response.headers["request-id"], "/v1/messages", 400, "invalid_request_error",
                                "claude-sonnet-4-5", True, "sess-9")]
    assert isinstance(rows[0].duration_ms, float)


def test_other_paths_get_no_usage_row(routed: Flask) -> None:
    routed.test_client().get("/test/refuse")
    assert routed.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        assert ClientRequest.select().count() == 0


def test_error_response_renders_inside_a_request(routed: Flask) -> None:
    with routed.test_request_context("/x", environ_base={"lynkr.request_id": "req_1"}):
        response = error_response(LynkrError("boom", status=502, headers={"a": "b"}))
    assert (response.status_code, response.headers["a"], response.get_json()) == (
        502, "b", {"type": "error", "error": {"type": "api_error", "message": "boom"}, "request_id": "req_1"})
