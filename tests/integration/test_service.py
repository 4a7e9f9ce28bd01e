"""Errors, request ids, inbound keys, health and log redaction through the Flask client."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import responses
from flask import Flask

from tests.conftest import DATABRICKS_TOKEN, DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request

SECRET_KEY = "sk-inbound-secret-0123456789"


def envelope_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


def test_unknown_route_and_wrong_method_use_the_envelope(client: Any) -> None:
    assert envelope_of(client.get("/v2/nothing")) == {"type": "not_found_error",
                                                      "message": "Not found: GET /v2/nothing"}
    response = client.get("/v1/messages")
    assert response.status_code == 405
    assert envelope_of(response)["type"] == "invalid_request_error"
    assert "POST" in response.headers["Allow"]


def test_body_over_the_limit_is_413(make_app: Any) -> None:
    client = make_app(request_json_limit=1024).test_client()
    response = client.post("/v1/messages", data=b"x" * 2048, content_type="application/json")
    assert response.status_code == 413
    assert envelope_of(response)["type"] == "request_too_large"


def test_unhandled_exception_is_a_500_without_a_stack_trace(client: Any) -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, body=RuntimeError("boom in the adapter"))
        response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 500
    assert envelope_of(response) == {"type": "api_error", "message": "Internal server error"}
    assert "Traceback" not in response.get_data(as_text=True)


def test_unhandled_exception_opening_a_stream_is_a_500_not_a_hanging_stream(client: Any) -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, body=RuntimeError("boom in the adapter"))
        response = client.post("/v1/messages", json=make_request(stream=True))
    assert response.status_code == 500
    assert envelope_of(response) == {"type": "api_error", "message": "Internal server error"}
    assert "Traceback" not in response.get_data(as_text=True)


def test_client_request_id_is_echoed_and_invalid_ones_replaced(client: Any) -> None:
    assert client.get("/health/live", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated.startswith("req_")
    assert len(generated) == 28


@pytest.fixture
def keyed_app(make_app: Any) -> Flask:
    return make_app(api_keys=(SECRET_KEY, "sk-other-key-000000"))


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"},
                                     {"authorization": f"Basic {SECRET_KEY}"}])
def test_api_keys_are_required_on_v1_routes(keyed_app: Flask, headers: dict[str, str]) -> None:
    response = keyed_app.test_client().post("/v1/messages", json=make_request(), headers=headers)
    assert response.status_code == 401
    assert envelope_of(response)["type"] == "authentication_error"


@pytest.mark.parametrize("headers", [{"x-api-key": SECRET_KEY}, {"authorization": f"Bearer {SECRET_KEY}"}])
def test_valid_keys_pass_and_health_needs_none(keyed_app: Flask, headers: dict[str, str]) -> None:
    client = keyed_app.test_client()
    assert client.get("/health/live").status_code == 200
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        assert client.post("/v1/messages", json=make_request(), headers=headers).status_code == 200


def test_readiness_reports_each_check(client: Any, drain: Any) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    checks = response.get_json()["checks"]
    assert set(checks) == {"database", "memory", "draining", "provider"}
    assert checks["database"]["ok"] is True
    assert checks["database"]["latency_ms"] >= 0
    drain.start()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["draining"] == {"ok": False}
    assert client.get("/health/live").status_code == 200


def test_unconfigured_provider_is_reported_and_named(make_app: Any) -> None:
    client = make_app(databricks_api_base="", databricks_api_key="").test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["provider"]["missing"] == ["DATABRICKS_API_BASE", "DATABRICKS_API_KEY"]
    response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 500
    assert response.headers["x-should-retry"] == "false"
    assert "set DATABRICKS_API_BASE, DATABRICKS_API_KEY" in envelope_of(response)["message"]


def test_deep_readiness_probes_the_provider(client: Any) -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=401, json={"type": "error", "error": {
            "type": "authentication_error", "message": "Invalid token"}})
        response = client.get("/health/ready?deep=true")
    assert response.status_code == 503
    provider = response.get_json()["checks"]["provider"]
    assert (provider["ok"], provider["status"], provider["error"]) == (False, 401, "Invalid token")


def test_no_secret_reaches_any_log_line(capfd: Any, keyed_app: Flask) -> None:
    client = keyed_app.test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=401, body=f"token {DATABRICKS_TOKEN} rejected, key {SECRET_KEY}")
        for headers in ({"x-api-key": SECRET_KEY}, {"authorization": f"Bearer {SECRET_KEY}"}):
            response = client.post("/v1/messages", json=make_request(), headers=headers)
            response.close()
    logging.getLogger("lynkr.test").warning("header dump x-api-key: %s", SECRET_KEY)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) >= 3
    for line in lines:
        assert line.startswith("{"), "\n".join(lines)
        record = json.loads(line)
        assert SECRET_KEY not in line
        assert DATABRICKS_TOKEN not in line
        assert "request_id" in record
    access = [json.loads(line) for line in lines if '"lynkr.access"' in line]
    assert {(a["method"], a["path"], a["status"]) for a in access} == {("POST", "/v1/messages", 401)}
    assert {(a["provider"], a["route_reason"]) for a in access} == {("databricks", "static")}
