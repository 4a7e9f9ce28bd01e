"""/v1/messages through the Flask client to Anthropic-format upstreams mocked with responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from app.storage.db import db
from app.storage.models import ClientRequest, Turn, UpstreamAttempt
from tests.conftest import AZURE_KEY, AZURE_URL, DATABRICKS_TOKEN, DATABRICKS_URL, load_fixture

CLIENT_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
    "x-stainless-lang": "js",
    "x-app": "cli",
    "accept-encoding": "gzip, deflate, br, zstd",
    "x-claude-code-session-id": "sess-1",
}


def make_request(**overrides: Any) -> dict[str, Any]:
    body = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hello"}]}
    body.update(overrides)
    return body


def make_message(**overrides: Any) -> dict[str, Any]:
    message = {"id": "msg_up1", "type": "message", "role": "assistant", "model": "databricks-claude-sonnet-4-5",
               "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 12, "output_tokens": 3}}
    message.update(overrides)
    return message


def sse_body(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def make_stream_events() -> list[dict[str, Any]]:
    return [
        {"type": "message_start", "message": make_message(content=[], stop_reason=None,
                                                          usage={"input_tokens": 12, "output_tokens": 1})},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]


def read_events(data: bytes) -> list[dict[str, Any]]:
    return [event.json() for event in SSEDecoder().feed(data)]


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_json_answer_echoes_requested_model_and_reports_the_real_one(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message(),
                headers={"request-id": "req_up", "anthropic-ratelimit-requests-remaining": "99",
                         "x-internal": "secret", "content-encoding": "identity"})
    response = client.post("/v1/messages?beta=true", json=make_request(), headers=CLIENT_HEADERS)
    assert response.status_code == 200
    assert response.get_json() == make_message(model="claude-sonnet-4-5-20250929")
    assert response.headers["X-Lynkr-Model"] == "databricks-claude-sonnet-4-5"
    assert response.headers["X-Lynkr-Provider"] == "databricks"
    client_visible = {name.lower() for name, _ in response.headers}
    assert client_visible == {"content-type", "content-length", "request-id", "anthropic-ratelimit-requests-remaining",
                              "x-lynkr-provider", "x-lynkr-model", "x-lynkr-route-reason", "x-request-id"}


def test_upstream_gets_only_allowed_headers(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    client.post("/v1/messages", json=make_request(), headers=CLIENT_HEADERS)
    sent = mocked.calls[0].request.headers
    assert {k.lower() for k in sent} == {"content-type", "accept", "anthropic-version", "anthropic-beta",
                                                "authorization", "user-agent", "accept-encoding", "connection",
                                                "content-length"}
    assert sent["authorization"] == f"Bearer {DATABRICKS_TOKEN}"
    assert sent["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent["accept-encoding"] != CLIENT_HEADERS["accept-encoding"]
    assert sent["user-agent"] == "lynkr/0.1"


def test_claude_code_request_is_fitted_to_the_databricks_profile(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    recorded = load_fixture("v2.1.331-default-opus-request1.json")
    body = dict(recorded["body"], stream=False)
    assert client.post("/v1/messages", json=body, headers=CLIENT_HEADERS).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["model"] == "databricks-claude-sonnet-4-5"
    assert sent["max_tokens"] == 64000
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 10000}
    assert "context_management" not in sent
    assert "output_config" not in sent
    assert all(m["role"] in ("user", "assistant") for m in sent["messages"])
    system_texts = [b["text"] for b in sent["system"]]
    original = [b["text"] for b in body["system"]]
    hoisted = [b["text"] for m in body["messages"] if m["role"] == "system" for b in m["content"]]
    assert system_texts == original + hoisted
    assert not any("defer_loading" in tool for tool in sent["tools"])
    assert [t["name"] for t in sent["tools"]] == [t["name"] for t in body["tools"]]


def test_tool_continuation_without_its_thinking_turns_thinking_off(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    body = dict(load_fixture("v2.1.331-default-opus-request2.json")["body"], stream=False)
    last_assistant = [m for m in body["messages"] if m["role"] == "assistant"][-1]
    assert [b["type"] for b in last_assistant["content"]] == ["text", "tool_use"]
    assert client.post("/v1/messages", json=body).status_code == 200
    assert "thinking" not in json.loads(mocked.calls[0].request.body)


def test_synthetic_thinking_is_never_sent_to_an_anthropic_host(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    body = make_request(max_tokens=20000, thinking={"type": "enabled", "budget_tokens": 8000}, messages=[
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "from gpt", "signature": "lynkr-synthetic:abc"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
    ])
    assert client.post("/v1/messages", json=body).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["messages"][1]["content"] == [body["messages"][1]["content"][1]]
    assert "thinking" not in sent


def test_invented_fields_and_blocks_at_every_depth_are_accepted(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    body = make_request(
        future_top_level={"x": 1},
        messages=[{"role": "user", "future_message_field": True, "content": [
            {"type": "text", "text": "hi", "future_block_field": {"deep": [1, {"deeper": True}]}},
            {"type": "hologram", "payload": {"anything": ["goes"]}},
        ]}],
        tools=[{"name": "T", "input_schema": {"type": "object"}, "future_tool_field": 1}],
    )
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["messages"][0]["content"][1] == {"type": "hologram", "payload": {"anything": ["goes"]}}
    assert sent["messages"][0]["content"][0]["future_block_field"] == {"deep": [1, {"deeper": True}]}


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "m", "max_tokens": None, "messages": []}, "max_tokens"),
    ({"model": "m", "max_tokens": "10", "messages": []}, "max_tokens"),
    ({"max_tokens": 10, "messages": []}, "model"),
    ({"model": "m", "max_tokens": 10, "messages": "hi"}, "messages"),
    ({"model": "m", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
])
def test_invalid_requests_name_the_field(client: FlaskClient, body: dict, field: str) -> None:
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(field + ":")
    assert error["request_id"] == response.headers["X-Request-ID"]


def test_bad_json_is_a_400(client: FlaskClient) -> None:
    response = client.post("/v1/messages", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("Request body is not valid JSON")


@pytest.mark.parametrize(("content", "message"), [
    (["hi"], "messages.0.content.0: must be a content block object"),
    ([{"type": "text", "text": "ok"}, 7], "messages.0.content.1: must be a content block object"),
    (None, "messages.0.content: must be a string or a list of content blocks"),
    ({"type": "text", "text": "hi"}, "messages.0.content: must be a string or a list of content blocks"),
])
def test_malformed_content_is_a_400_naming_it(client: FlaskClient, mocked: Any, content: Any, message: str) -> None:
    response = client.post("/v1/messages", json=make_request(messages=[{"role": "user", "content": content}]))
    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error", "message": message}
    assert len(mocked.calls) == 0


def test_stream_relays_events_in_order(client: FlaskClient, mocked: Any) -> None:
    upstream = [*make_stream_events(), {"type": "future_event", "x": 1}]
    upstream.insert(3, {"type": "future_event", "x": 1})
    upstream.pop()
    mocked.post(DATABRICKS_URL, body=sse_body(upstream), content_type="text/event-stream")
    response = client.post("/v1/messages", json=make_request(stream=True))
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = read_events(response.get_data())
    validate_stream(events)
    expected = [dict(e) for e in upstream]
    expected[0] = {"type": "message_start",
                   "message": {**upstream[0]["message"], "model": "claude-sonnet-4-5-20250929"}}
    assert events == expected
    assert json.loads(mocked.calls[0].request.body)["stream"] is True


def test_stream_that_stops_early_ends_with_an_error_event(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, body=sse_body(make_stream_events()[:4]), content_type="text/event-stream")
    events = read_events(client.post("/v1/messages", json=make_request(stream=True)).get_data())
    validate_stream(events)
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == "api_error"
    assert not any(e["type"] == "message_stop" for e in events)


def test_upstream_anthropic_error_body_passes_through(client: FlaskClient, mocked: Any) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
             "request_id": "req_upstream"}
    mocked.post(DATABRICKS_URL, status=529, json=error, headers={"retry-after": "120"})
    for stream in (False, True):
        response = client.post("/v1/messages", json=make_request(stream=stream))
        assert response.status_code == 529
        assert response.get_json() == error
        assert response.headers["retry-after"] == "60"


def test_non_anthropic_upstream_error_gets_our_envelope(client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, status=502, body="<html>Bad gateway</html>")
    response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 502
    assert response.get_json()["error"] == {"type": "api_error", "message": "<html>Bad gateway</html>"}


def test_upstream_redirect_is_not_followed(client: FlaskClient, mocked: Any) -> None:
    # Following it would resend (or, for 301-303, turn into a GET) a model call the client never
    # pointed there.
    mocked.post(DATABRICKS_URL, status=307, headers={"location": "http://elsewhere.example/v1/messages"})
    mocked.post("http://elsewhere.example/v1/messages", json=make_message())
    response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 502
    assert response.get_json()["error"] == {"type": "api_error",
                                            "message": "databricks answered with a body that is not JSON."}
    assert [call.request.url for call in mocked.calls] == [DATABRICKS_URL]


@pytest.mark.parametrize(("exception", "status", "error_type", "wording"), [
    (requests.ConnectionError("[Errno 111] Connection refused"), 502, "api_error",
     "Could not connect to databricks at example.cloud.databricks.com: connection refused."),
    (requests.ReadTimeout("read timed out"), 504, "timeout_error",
     "databricks at example.cloud.databricks.com did not answer in time."),
])
def test_transport_failures_map_to_anthropic_errors(client: FlaskClient, mocked: Any, exception: Exception,
                                                   status: int, error_type: str, wording: str) -> None:
    mocked.post(DATABRICKS_URL, body=exception)
    for stream in (False, True):
        response = client.post("/v1/messages", json=make_request(stream=stream))
        assert response.status_code == status
        assert response.get_json()["error"] == {"type": error_type, "message": wording}


def test_azure_uses_x_api_key_and_configured_version(make_app: Any, mocked: Any) -> None:

    app = make_app(model_provider="azure-anthropic", azure_anthropic_version="2023-01-01")
    mocked.post(AZURE_URL, json=make_message())
    response = app.test_client().post("/v1/messages", json=make_request(), headers=CLIENT_HEADERS)
    assert response.status_code == 200
    sent = mocked.calls[0].request.headers
    assert sent["x-api-key"] == AZURE_KEY
    assert "authorization" not in {k.lower() for k in sent}
    assert sent["anthropic-version"] == "2023-01-01"


def test_count_tokens_is_answered_locally(client: FlaskClient, mocked: Any) -> None:
    body = load_fixture("v2.1.331-model-haiku-request1.json")["body"]
    response = client.post("/v1/messages/count_tokens?beta=true",
                           json={k: body[k] for k in ("model", "messages", "system", "tools")})
    assert response.status_code == 200
    assert 5000 < response.get_json()["input_tokens"] < 12000
    assert len(mocked.calls) == 0


def test_a_queued_transcript_write_is_weighed_by_the_body_it_keeps(app: Flask, client: FlaskClient, mocked: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = app.extensions["lynkr"].recorder
    weights: list[int] = []
    submit = recorder.submit
    monkeypatch.setattr(recorder, "submit", lambda job, holds_bytes=0: (weights.append(holds_bytes),
                                                                        submit(job, holds_bytes)))
    mocked.post(DATABRICKS_URL, json=make_message())
    body = json.dumps(make_request()).encode()
    client.post("/v1/messages", data=body, content_type="application/json", headers=CLIENT_HEADERS)
    client.post("/v1/messages", data=body, content_type="application/json",
                headers={k: v for k, v in CLIENT_HEADERS.items() if k != "x-claude-code-session-id"})
    # Without a session no turns are stored, so the job keeps nothing of the body alive.
    assert weights == [len(body), 0]


def test_usage_and_transcript_rows_are_written(app: Flask, client: FlaskClient, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    client.post("/v1/messages", json=make_request(), headers={**CLIENT_HEADERS, "x-request-id": "req-test-1"})
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req-test-1")
        assert (row.session_id, row.provider, row.model, row.status) == (
            "sess-1", "databricks", "databricks-claude-sonnet-4-5", 200)
        assert (row.input_tokens, row.output_tokens) == (12, 3)
        attempt = UpstreamAttempt.get(UpstreamAttempt.request == row.id)
        assert (attempt.provider, attempt.status, attempt.input_tokens, attempt.route_reason) == (
            "databricks", 200, 12, "static")
        assert [t.role for t in Turn.select().where(Turn.session == "sess-1").order_by(Turn.position)] == [
            "user", "assistant"]


def test_draining_refuses_new_messages(app: Flask, client: FlaskClient, drain: Any) -> None:
    drain.start()
    response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 503
    assert response.get_json()["error"]["type"] == "overloaded_error"
    assert response.headers["retry-after"] == "5"


def test_concurrency_cap_answers_529(make_app: Any) -> None:
    app = make_app(cap_wait_ms=50)
    client = app.test_client()
    limiter = app.extensions["lynkr"].limiter
    while limiter.try_acquire(wait_s=0):
        pass
    response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 529
    assert response.get_json()["error"]["type"] == "overloaded_error"
    assert client.get("/health/live").status_code == 200


def test_root_answers_connectivity_checks_and_telemetry_is_dropped(client: FlaskClient, mocked: Any) -> None:
    assert client.get("/").get_json() == {"name": "lynkr", "status": "ok"}
    head = client.head("/")
    assert head.status_code == 200
    assert head.get_data() == b""
    response = client.post("/api/event_logging/batch", json={"events": [{"event_name": "tengu_started"}]})
    assert (response.status_code, response.get_json()) == (200, {})
    assert len(mocked.calls) == 0
