"""The Messages API routes through the Flask test client, Databricks faked with ``responses``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from app.anthropic.tokens import count_tokens
from app.resilience.drain import DrainFlag
from tests.conftest import DATABRICKS_URL
from tests.fakes.anthropic_events import error_body, sse_frame, text_events

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi there"}]}
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "databricks-claude-sonnet-4-5",
           "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 9, "output_tokens": 2}}
CLAUDE_NAMES = ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"]


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DATABRICKS_URL, json=MESSAGE)
        yield mock


@pytest.fixture
def client(app: Flask, upstream: responses.RequestsMock) -> FlaskClient:
    return app.test_client()


def model(model_id: str, display_name: str) -> dict[str, str]:
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": "2025-01-01T00:00:00Z"}


def test_count_tokens_counts_locally(client: FlaskClient) -> None:
    response = client.post("/v1/messages/count_tokens", json=BODY)

    assert response.status_code == 200
    assert response.get_json() == {"input_tokens": count_tokens(BODY)}
    assert response.get_json()["input_tokens"] > 0


def test_count_tokens_refuses_a_body_without_messages(client: FlaskClient) -> None:
    response = client.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-5"})

    assert response.status_code == 400
    assert response.get_json()["type"] == "error"
    assert response.get_json()["error"]["type"] == "invalid_request_error"


def test_models_lists_the_claude_names_then_the_upstream_models(client: FlaskClient) -> None:
    response = client.get("/v1/models")

    assert response.status_code == 200
    assert response.get_json() == {
        "data": [*(model(name, f"{name} via databricks (databricks-claude-sonnet-4-5)") for name in CLAUDE_NAMES),
                 model("databricks-claude-sonnet-4-5", "databricks-claude-sonnet-4-5 on databricks")],
        "has_more": False, "first_id": "claude-opus-4-5", "last_id": "databricks-claude-sonnet-4-5",
    }


def test_models_are_paged(client: FlaskClient) -> None:
    first = client.get("/v1/models?limit=2").get_json()
    after = client.get("/v1/models?limit=2&after_id=claude-sonnet-4-5").get_json()
    before = client.get("/v1/models?limit=1&before_id=claude-sonnet-4-5").get_json()

    assert ([m["id"] for m in first["data"]], first["has_more"]) == (CLAUDE_NAMES[:2], True)
    assert ([m["id"] for m in after["data"]], after["has_more"]) == (
        ["claude-haiku-4-5", "databricks-claude-sonnet-4-5"], False)
    assert ([m["id"] for m in before["data"]], before["has_more"]) == (["claude-opus-4-5"], False)


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_a_bad_models_limit_is_400(client: FlaskClient, limit: str) -> None:
    response = client.get(f"/v1/models?limit={limit}")

    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error",
                                            "message": "limit: must be an integer from 1 to 1000"}


def test_one_model_a_claude_name_or_404(client: FlaskClient) -> None:
    assert client.get("/v1/models/claude-sonnet-4-5").get_json() == model(
        "claude-sonnet-4-5", "claude-sonnet-4-5 via databricks (databricks-claude-sonnet-4-5)")
    assert client.get("/v1/models/claude-3-opus").get_json() == model(
        "claude-3-opus", "claude-3-opus via databricks (databricks-claude-sonnet-4-5)")
    missing = client.get("/v1/models/gpt-9")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == {
        "type": "not_found_error",
        "message": "model: gpt-9 is not served by this gateway (GET /v1/models lists what is)."}


def test_root_answers_get_and_head(client: FlaskClient) -> None:
    got = client.get("/")
    head = client.head("/")

    assert (got.status_code, got.get_json()) == (200, {"name": "lynkr", "status": "ok"})
    assert (head.status_code, head.data) == (200, b"")


def test_event_logging_is_accepted_and_dropped(client: FlaskClient, upstream: responses.RequestsMock) -> None:
    response = client.post("/api/event_logging/batch", json={"events": [{"event_name": "tengu_startup"}]})

    assert (response.status_code, response.get_json()) == (200, {})
    assert len(upstream.calls) == 0


def test_a_draining_worker_refuses_with_503_and_retry_after(client: FlaskClient, drain: DrainFlag,
                                                            upstream: responses.RequestsMock) -> None:
    drain.start()

    response = client.post("/v1/messages", json=BODY)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.get_json()["error"] == {"type": "overloaded_error",
                                            "message": "Lynkr is shutting down; retry shortly."}
    assert len(upstream.calls) == 0


def test_a_message_is_answered_as_json_with_who_answered(client: FlaskClient,
                                                         upstream: responses.RequestsMock) -> None:
    response = client.post("/v1/messages?beta=true", json=BODY)

    assert response.status_code == 200
    assert response.get_json() == {**MESSAGE, "model": "claude-sonnet-4-5"}
    assert (response.headers["X-Lynkr-Provider"], response.headers["X-Lynkr-Model"]) == (
        "databricks", "databricks-claude-sonnet-4-5")
    sent_body = upstream.calls[0].request.body
    assert isinstance(sent_body, bytes)
    sent: dict[str, Any] = orjson.loads(sent_body)
    assert sent["messages"] == BODY["messages"]


def test_a_body_that_is_not_json_is_400(client: FlaskClient, upstream: responses.RequestsMock) -> None:
    response = client.post("/v1/messages", data=b"{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "invalid_request_error"
    assert len(upstream.calls) == 0


def test_a_body_over_the_limit_is_413(make_app: Any) -> None:
    client = make_app(request_json_limit=1024).test_client()

    response = client.post("/v1/messages", json={**BODY, "system": "x" * 2048})

    assert response.status_code == 413
    assert response.get_json()["error"] == {"type": "request_too_large",
                                            "message": "Request body is larger than the limit (REQUEST_JSON_LIMIT)."}


def test_a_stream_is_relayed_as_sse(app: Flask) -> None:
    events = text_events(["Hel", "lo"])
    with responses.RequestsMock() as mock:
        mock.post(DATABRICKS_URL, body=b"".join(sse_frame(e) for e in events), content_type="text/event-stream")
        response = app.test_client().post("/v1/messages", json={**BODY, "stream": True})
        raw = response.get_data()

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["X-Lynkr-Provider"] == "databricks"
    sent = [orjson.loads(frame.split(b"\ndata: ", 1)[1]) for frame in raw.split(b"\n\n") if frame.startswith(b"event:")]
    assert [e["type"] for e in sent] == [e["type"] for e in events]
    assert sent[0]["message"]["model"] == "claude-sonnet-4-5"
    assert "".join(e["delta"]["text"] for e in sent if e["type"] == "content_block_delta") == "Hello"


def test_an_upstream_refusal_keeps_its_status(app: Flask) -> None:
    with responses.RequestsMock() as mock:
        mock.post(DATABRICKS_URL, status=400, json=error_body("invalid_request_error", "max_tokens: too large"))
        response = app.test_client().post("/v1/messages", json=BODY)

    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: too large"}
