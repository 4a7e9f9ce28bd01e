"""Upstream answers are checked for what they are, through real gunicorn (``lynkr serve``, two workers).

- An Anthropic-format upstream that answers HTTP 200 with ``{"type":"error",…}`` is an error: the
  client gets the status its type stands for, the body passes through, and the usage row says so.
- A chat-completions stream of only ``choices: []`` chunks then ``[DONE]`` ends in an ``error``
  event, not a clean ``message_stop`` with an empty message.
- A JSON body or one SSE line over ``LYNKR_MAX_UPSTREAM_EVENT_BYTES`` is an upstream error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.conftest import openai_env
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.fakes.behaviours import JsonReply
from tests.fakes.openai_chunks import chunk

pytestmark = pytest.mark.slow
LIMIT = 4096
QUIET = {"API_RETRY_MAX_RETRIES": "0", "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "1000",
         "LYNKR_MAX_UPSTREAM_EVENT_BYTES": str(LIMIT)}


def usage_row(gateway: Gateway, request_id: str) -> tuple[int, str | None]:
    """``(status, error_type)`` of the one usage row of ``request_id``."""
    def rows() -> list[tuple[int, str | None]]:
        with sqlite3.connect(gateway.workdir / "lynkr.db") as connection:
            return connection.execute("SELECT status, error_type FROM client_requests WHERE request_id = ?",
                                      (request_id,)).fetchall()

    wait_until(lambda: bool(rows()), timeout=10)
    [row] = rows()
    return row


def post(gateway: Gateway, body: dict[str, Any], request_id: str) -> requests.Response:
    return requests.post(gateway.url + "/v1/messages", json=body, stream=bool(body.get("stream")), timeout=30,
                         headers={**ANTHROPIC_HEADERS, "X-Request-ID": request_id})


def test_anthropic_format_answers_checked(make_gateway: Callable[..., Gateway],
                                          mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(**QUIET)

    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mocked_upstream.script(JsonReply(body=overloaded, status=200))
    response = post(gateway, message_body("Say hello."), "req_200_error")
    assert response.status_code == 529
    assert response.json()["error"] == overloaded["error"]
    assert usage_row(gateway, "req_200_error") == (529, "overloaded_error")

    mocked_upstream.script(JsonReply(body=ev.message([ev.text_block("x" * (2 * LIMIT))])))
    response = post(gateway, message_body("Say hello."), "req_big_json")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    assert f"larger than {LIMIT} bytes (LYNKR_MAX_UPSTREAM_EVENT_BYTES)" in response.json()["error"]["message"]
    assert usage_row(gateway, "req_big_json") == (502, "api_error")

    mocked_upstream.script(StreamReply(events=ev.text_events(["fine. ", "y" * (2 * LIMIT)])))
    read = read_sse(post(gateway, message_body("Say hello.", stream=True), "req_big_line"))
    assert read.types[-1] == "error"
    assert "message_stop" not in read.types
    assert "LYNKR_MAX_UPSTREAM_EVENT_BYTES" in read.events[-1]["error"]["message"]
    assert usage_row(gateway, "req_big_line") == (502, "api_error")

    empty = [ev.message_start(), {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None},
                                  "usage": {"output_tokens": 0}}, {"type": "message_stop"}]
    mocked_upstream.script(StreamReply(events=empty))
    read = read_sse(post(gateway, message_body("Say hello.", stream=True), "req_empty_message"))
    assert read.types[-1] == "error"
    assert "message_stop" not in read.types
    assert usage_row(gateway, "req_empty_message") == (502, "api_error")

    mocked_upstream.script(StreamReply(events=ev.text_events(["Hello ", "again."])))
    healthy = read_sse(post(gateway, message_body("Say hello.", stream=True), "req_healthy"))
    assert (healthy.types[-1], healthy.text()) == ("message_stop", "Hello again.")
    assert usage_row(gateway, "req_healthy") == (200, None)


def test_a_chat_stream_of_empty_chunks_is_an_error(make_gateway: Callable[..., Gateway], openai_upstream: Any) -> None:
    from tests.fakes.openai_upstream import StreamReply as ChatStreamReply

    gateway = make_gateway(**openai_env(openai_upstream, **QUIET))
    openai_upstream.script(ChatStreamReply(chunks=[chunk(None), chunk(None), chunk(None)], done=True))
    response = post(gateway, message_body("Say hello.", stream=True), "req_empty_choices")
    read = read_sse(response)
    assert response.status_code == 200
    assert read.types[-1] == "error"
    assert "message_stop" not in read.types
    assert read.events[-1]["error"]["type"] == "api_error"
    assert usage_row(gateway, "req_empty_choices") == (502, "api_error")


def test_a_long_conversation_to_an_unknown_model_goes_upstream(make_gateway: Callable[..., Gateway]) -> None:
    from tests.fakes.openai_upstream import FakeOpenAIUpstream

    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n} " + "lorem ipsum " * 420}
             for n in range(99)]
    body = {**message_body("Say hello."), "messages": turns}
    with FakeOpenAIUpstream() as fake:
        gateway = make_gateway(**openai_env(fake, OPENAI_COMPATIBLE_MODEL="my-finetune-7b", **QUIET))
        response = post(gateway, body, "req_long_unknown")
        assert response.status_code == 200, response.text
        assert len(fake.chat_requests()) == 1
    assert usage_row(gateway, "req_long_unknown") == (200, None)
