"""Ingress through the Flask client: 4xx for whatever a client sends, 413 chunked or not, the seed's
shapes, request ids on every response, and one usage row for every request, refusals included."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import responses
from flask import Flask

from app.storage.db import db
from app.storage.models import ClientRequest
from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request

KEY = "sk-ingress-key-000001"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"
COMPLETION = {"id": "c1", "object": "chat.completion", "model": "gpt-4o",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
READ_TOOL = {"name": "Read", "description": "reads a file", "input_schema": {"type": "object"}}


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(DATABRICKS_URL, json=make_message(), headers={"request-id": "req_from_upstream"})
        rsps.post(OPENAI_URL, json=COMPLETION)
        yield rsps


def rows(app: Flask, answers: list[Any]) -> list[ClientRequest]:
    """The usage rows of ``answers`` (by their request ids; an earlier test's writer may add others)."""
    assert app.extensions["lynkr"].recorder.flush()
    ids = [answer.headers["request-id"] for answer in answers]
    with db.connection_context():
        return list(ClientRequest.select().where(ClientRequest.request_id.in_(ids)).order_by(ClientRequest.id))


def assert_envelope(response: Any, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["X-Request-ID"] == response.headers["request-id"]
    return body


# -- 4xx for what a client sends ----------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("overrides", "message"), [
    ({"thinking": {"type": "enabled", "budget_tokens": "lots"}}, "thinking.budget_tokens: Not a valid integer."),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}]},
     "messages.0.content.0.source: must be an object"),
    ({"metadata": "x"}, "metadata: must be an object"),
    ({"metadata": deep(300)}, "Request body nests deeper than 128 levels."),
    ({"model": "gpt-4o\nX-Injected: 1"}, "model: must be printable ASCII without spaces"),  # went to X-Lynkr-Model
])
def test_a_body_that_crashed_the_pipeline_is_a_400_with_one_row(app: Flask, mocked: Any, overrides: dict[str, Any],
                                                                  message: str) -> None:
    response = app.test_client().post("/v1/messages", json=make_request(**overrides))
    assert assert_envelope(response, 400, "invalid_request_error")["error"]["message"] == message
    assert len(mocked.calls) == 0
    [row] = rows(app, [response])
    assert (row.status, row.error_type, row.path) == (400, "invalid_request_error", "/v1/messages")


# -- 413 ----------------------------------------------------------------------------------------


def oversized(limit: int) -> bytes:
    return json.dumps(make_request(system="x" * limit)).encode()


def test_a_body_over_the_limit_is_413_with_or_without_content_length(make_app: Any, mocked: Any) -> None:
    app = make_app(request_json_limit=4096)
    client = app.test_client()
    announced = client.post("/v1/messages", data=oversized(4096), content_type="application/json")
    chunked = client.post("/v1/messages", input_stream=io.BytesIO(oversized(4096)),
                          headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})
    for response in (announced, chunked):
        body = assert_envelope(response, 413, "request_too_large")
        assert body["error"]["message"] == "Request body is larger than the limit (REQUEST_JSON_LIMIT)."
    assert [(row.status, row.error_type) for row in rows(app, [announced, chunked])] == [(413, "request_too_large")] * 2


def test_a_chunked_body_at_the_limit_is_read_whole(make_app: Any, mocked: Any) -> None:
    body = json.dumps(make_request()).encode()
    client = make_app(request_json_limit=len(body)).test_client()
    response = client.post("/v1/messages", input_stream=io.BytesIO(body),
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200
    assert json.loads(mocked.calls[0].request.body)["messages"] == [{"role": "user", "content": "Hello"}]


# -- the seed's shapes --------------------------------------------------------------------------


def seed_request() -> dict[str, Any]:
    body = make_request(tools=[READ_TOOL], tool_choice={"type": "function", "function": {"name": "Read"}})
    del body["max_tokens"]
    return body


def test_seed_request_reaches_an_anthropic_host_with_max_tokens_and_anthropic_tool_choice(app: Flask,
                                                                                          mocked: Any) -> None:
    assert app.test_client().post("/v1/messages", json=seed_request()).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["max_tokens"] == 64000  # claude-sonnet-* in the capability table
    assert sent["tool_choice"] == {"type": "tool", "name": "Read"}


def test_seed_request_reaches_a_chat_completions_host_translated(make_app: Any, mocked: Any) -> None:
    client = make_app(model_provider="openai", openai_api_key="sk-openai-test-1234", fallback_enabled=False,
                      openai_model="gpt-4o").test_client()
    assert client.post("/v1/messages", json=seed_request()).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["max_tokens"] == 16384  # gpt-4o's output limit
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Read"}}


# -- request ids --------------------------------------------------------------------------------


def test_every_response_carries_request_id_equal_to_x_request_id(app: Flask, mocked: Any) -> None:
    client = app.test_client()
    answered = client.post("/v1/messages", json=make_request())
    assert answered.status_code == 200
    assert answered.headers.getlist("request-id") == [answered.headers["X-Request-ID"]]  # not the upstream's
    chosen = client.post("/v1/messages", json=make_request(stream=True), headers={"X-Request-ID": "my-id.1"})
    assert (chosen.headers["request-id"], chosen.headers["X-Request-ID"]) == ("my-id.1", "my-id.1")
    for other in (client.get("/health/live"), client.get("/v1/models"), client.get("/nowhere")):
        assert other.headers["request-id"] == other.headers["X-Request-ID"]


def test_an_upstream_error_body_without_request_id_gets_ours(app: Flask) -> None:
    upstream = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, status=529, json=upstream)
        response = app.test_client().post("/v1/messages", json=make_request())
    assert response.status_code == 529
    assert response.get_json() == {**upstream, "request_id": response.headers["request-id"]}


# -- one usage row per request ------------------------------------------------------------------


def test_refusals_before_the_exchange_get_one_row_each(make_app: Any, drain: Any, mocked: Any) -> None:
    app = make_app(api_keys=(KEY,), request_json_limit=4096, max_queue_ms=1000, budget_key_daily_tokens=10,
                   prompt_cache_enabled=False)
    client = app.test_client()
    keyed = {"x-api-key": KEY, "x-claude-code-session-id": "sess-audit"}
    outcomes = [
        client.post("/v1/messages", json=make_request(), headers={"x-api-key": "sk-wrong-key-00000000"}),
        client.post("/v1/messages", json=make_request(metadata="x"), headers=keyed),
        client.post("/v1/messages", data=oversized(4096), content_type="application/json", headers=keyed),
        client.post("/v1/messages", json=make_request(), headers={**keyed, "X-Request-Start": f"t={time.time() - 60}"}),
        client.post("/v1/messages", json=make_request(), headers=keyed),  # answered; spends the budget
        client.post("/v1/messages", json=make_request(), headers=keyed),  # 402 from the orchestrator
    ]
    drain.start()
    outcomes.append(client.post("/v1/messages", json=make_request(), headers=keyed))
    assert [r.status_code for r in outcomes] == [401, 400, 413, 503, 200, 402, 503]
    recorded = [(row.status, row.error_type, row.api_key is not None) for row in rows(app, outcomes)]
    assert recorded == [
        (401, "authentication_error", False), (400, "invalid_request_error", True), (413, "request_too_large", True),
        (503, "overloaded_error", True), (200, None, True), (402, "billing_error", True),
        (503, "overloaded_error", True),
    ]
    with db.connection_context():
        refused = ClientRequest.get(ClientRequest.request_id == outcomes[1].headers["request-id"])
    assert (refused.model_requested, refused.session_id) == ("claude-sonnet-4-5-20250929", "sess-audit")
    assert refused.duration_ms is not None


def test_a_rate_limited_request_gets_one_row(make_app: Any, mocked: Any) -> None:
    app = make_app(rate_limit_requests_per_minute=1, prompt_cache_enabled=False)
    client = app.test_client()
    answers = [client.post("/v1/messages", json=make_request()) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 429]
    assert [(row.status, row.error_type) for row in rows(app, answers)] == [(200, None), (429, "rate_limit_error")]


def test_other_paths_write_no_rows(app: Flask, mocked: Any) -> None:
    client = app.test_client()
    answers = [client.post("/v1/messages/count_tokens", json={"model": "m", "messages": "x"}),
               client.get("/v1/models/nope")]
    assert [answer.status_code for answer in answers] == [400, 404]
    assert rows(app, answers) == []


def test_a_crash_before_the_exchange_gives_the_slot_back_and_writes_one_row(app: Flask, mocked: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("session store broke")

    monkeypatch.setattr("app.blueprints.messages.session_id_from", broken)
    response = app.test_client().post("/v1/messages", json=make_request())
    body = assert_envelope(response, 500, "api_error")
    assert body["error"]["message"] == "Internal server error"
    assert app.extensions["lynkr"].limiter.in_flight == 0
    assert [(row.status, row.error_type) for row in rows(app, [response])] == [(500, "api_error")]
    assert len(mocked.calls) == 0
