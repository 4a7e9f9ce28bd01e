"""The prompt cache through /v1/messages: a repeated tool-free request is answered without the upstream."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from flask import Flask

from app.anthropic.events import validate_stream
from app.storage.db import db
from app.storage.models import ClientRequest
from tests.conftest import DATABRICKS_URL
from tests.integration.conftest import REDIS_URL
from tests.integration.test_messages_anthropic import (
    make_message,
    make_request,
    make_stream_events,
    read_events,
    sse_body,
)

PROMPT = "Name three primary colours."


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def sdk_message(events: list[dict[str, Any]]) -> Any:
    """The message the official SDK folds the events into."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        parsed = construct_type(type_=RawMessageStreamEvent, value=event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def ask(app: Flask, request_id: str, prompt: str = PROMPT, **overrides: Any) -> Any:
    body = make_request(messages=[{"role": "user", "content": prompt}], **overrides)
    return app.test_client().post("/v1/messages", json=body, headers={"x-request-id": request_id})


def test_a_repeated_json_request_is_a_cache_read(app: Flask, mocked: Any) -> None:
    usage = {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0}
    mocked.post(DATABRICKS_URL, json=make_message(usage=usage))
    first = ask(app, "req_first")
    second = ask(app, "req_second", metadata={"user_id": "another-session"})
    assert len(mocked.calls) == 1
    assert "X-Lynkr-Cache" not in first.headers
    assert second.headers["X-Lynkr-Cache"] == "hit"
    assert second.headers["X-Lynkr-Route-Reason"] == "prompt_cache"
    assert second.headers["X-Lynkr-Model"] == "databricks-claude-sonnet-4-5"
    hit = second.get_json()
    assert hit["id"] == "msg_second"
    assert hit["model"] == "claude-sonnet-4-5-20250929"
    assert hit["content"] == first.get_json()["content"]
    assert hit["usage"] == {"input_tokens": 0, "cache_read_input_tokens": 15, "cache_creation_input_tokens": 0,
                            "output_tokens": 3}
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        row = ClientRequest.get(ClientRequest.request_id == "req_second")
        assert (row.provider, row.route_reason, row.status) == ("databricks", "prompt_cache", 200)
        assert (row.input_tokens, row.cache_read_input_tokens, row.output_tokens) == (0, 15, 3)


def test_a_streamed_answer_is_replayed_as_a_stream_and_as_json(app: Flask, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, body=sse_body(make_stream_events()), content_type="text/event-stream")
    ask(app, "req_one", stream=True).get_data()
    replayed = ask(app, "req_two", stream=True)
    as_json = ask(app, "req_three")
    assert len(mocked.calls) == 1
    assert replayed.mimetype == "text/event-stream"
    events = read_events(replayed.get_data())
    validate_stream(events)
    message = sdk_message(events)
    assert message.id == "msg_two"
    assert [block.text for block in message.content] == ["Hi!"]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 0
    assert message.usage.cache_read_input_tokens == as_json.get_json()["usage"]["cache_read_input_tokens"] > 0
    assert as_json.get_json()["content"] == [{"type": "text", "text": "Hi!"}]


@pytest.mark.parametrize("answer", [
    make_message(content=[{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}], stop_reason="tool_use"),
    make_message(stop_reason="max_tokens"),
], ids=["tool_use", "max_tokens"])
def test_tool_calls_and_cut_answers_always_go_upstream(app: Flask, mocked: Any, answer: dict[str, Any]) -> None:
    mocked.post(DATABRICKS_URL, json=answer)
    ask(app, "req_a")
    ask(app, "req_b")
    assert len(mocked.calls) == 2


def test_a_different_prompt_or_setting_is_a_miss(app: Flask, mocked: Any) -> None:
    mocked.post(DATABRICKS_URL, json=make_message())
    ask(app, "req_a")
    ask(app, "req_b", temperature=0.3)
    ask(app, "req_c", max_tokens=2048)
    ask(app, "req_d", prompt="Name four primary colours.")
    assert len(mocked.calls) == 4


def test_the_cache_can_be_turned_off(make_app: Any, mocked: Any) -> None:
    app = make_app(prompt_cache_enabled=False)
    mocked.post(DATABRICKS_URL, json=make_message())
    ask(app, "req_a")
    assert "X-Lynkr-Cache" not in ask(app, "req_b").headers
    assert len(mocked.calls) == 2


@pytest.mark.redis
def test_instances_sharing_redis_share_answers(make_app: Any, mocked: Any, tmp_path: Path) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/start-services.sh")
    # Two instances share Redis, each with its own database (instances on one machine's SQLite
    # file are not the deployment this is about; several instances share PostgreSQL).
    first = make_app(redis_url=REDIS_URL)
    second = make_app(redis_url=REDIS_URL, session_db_path=str(tmp_path / "second.db"))
    mocked.post(DATABRICKS_URL, json=make_message())
    prompt = f"Shared across instances ({uuid.uuid4()})"
    ask(first, "req_on_first", prompt)
    response = ask(second, "req_on_second", prompt)
    assert len(mocked.calls) == 1
    assert response.headers["X-Lynkr-Cache"] == "hit"
    for app in (first, second):
        app.extensions["lynkr"].orchestrator.cache.close()
