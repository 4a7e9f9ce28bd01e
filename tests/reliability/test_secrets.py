"""A secret canary: configured secrets planted in upstream errors, URLs and streams never reach a
client answer, a log line or a database row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses
from flask import Flask

from app.storage.db import db
from app.storage.models import ClientRequest, UpstreamAttempt
from tests.conftest import DATABRICKS_URL

CANARY_KEY = "canary-provider-key-7f3a9c"
CANARY_PASSWORD = "canary-url-password-51de"
HEADERS = {"anthropic-version": "2023-06-01", "x-claude-code-session-id": "sess-canary"}
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}


def secret_app(make_app: Callable[..., Flask], **overrides: Any) -> Flask:
    return make_app(databricks_api_key=CANARY_KEY,
                    database_url="", redis_url="", **overrides)


def everything_stored(app: Flask) -> str:
    """Every usage and attempt row, as text."""
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        rows = [*ClientRequest.select().dicts(), *UpstreamAttempt.select().dicts()]
    return json.dumps(rows, default=str)


def assert_nowhere(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


@pytest.mark.parametrize("echo", [
    {"type": "error", "error": {"type": "authentication_error", "message": f"Invalid bearer token {CANARY_KEY}"}},
    {"error": {"message": f"Incorrect API key provided: {CANARY_KEY}.", "type": "invalid_request_error"}},
], ids=["anthropic-envelope", "openai-shape"])
def test_a_key_echoed_in_an_upstream_error_never_reaches_the_client(
        make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str], echo: dict[str, Any]) -> None:
    app = secret_app(make_app)
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, DATABRICKS_URL, json=echo, status=401)
        response = app.test_client().post("/v1/messages", json=BODY, headers=HEADERS)

    assert response.status_code == 401
    assert response.get_json()["type"] == "error"
    assert "[REDACTED]" in response.get_data(as_text=True)
    assert_nowhere(CANARY_KEY, response.get_data(as_text=True), json.dumps(dict(response.headers)),
                   capfd.readouterr().err, everything_stored(app))


def test_a_key_echoed_in_a_mid_stream_error_frame_never_reaches_the_client(
        make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str]) -> None:
    app = secret_app(make_app)
    frames = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "model": "m", "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 1, "output_tokens": 1}}},
        {"type": "error", "error": {"type": "api_error", "message": f"token {CANARY_KEY} was revoked"}},
    ]
    sse = b"".join(f"event: {f['type']}\ndata: {json.dumps(f)}\n\n".encode() for f in frames)
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, DATABRICKS_URL, body=sse, status=200, content_type="text/event-stream")
        response = app.test_client().post("/v1/messages", json={**BODY, "stream": True}, headers=HEADERS)
        text = response.get_data(as_text=True)

    assert "event: error" in text
    assert "was revoked" in text
    assert_nowhere(CANARY_KEY, text, capfd.readouterr().err, everything_stored(app))


def test_userinfo_in_an_endpoint_url_never_reaches_a_client_or_a_log_line(
        make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str]) -> None:
    app = secret_app(make_app, databricks_api_base=f"http://lynkr-user:{CANARY_PASSWORD}@127.0.0.1:9")
    response = app.test_client().post("/v1/messages", json=BODY, headers=HEADERS)
    ready = app.test_client().get("/health/ready?deep=true")

    assert response.status_code in (502, 529)
    assert "127.0.0.1:9" in response.get_json()["error"]["message"]
    logs = capfd.readouterr().err
    for secret in (CANARY_PASSWORD, "lynkr-user"):
        assert_nowhere(secret, response.get_data(as_text=True), ready.get_data(as_text=True), logs,
                       everything_stored(app))
