"""What ``lynkr serve`` stores, through real gunicorn: a usage row per request (one per request id,
even when a client reuses its own), an attempt row per upstream call, and each transcript turn once —
written by the background writer, checked in the SQLite file afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tests.e2e.helpers import Gateway, message_body, read_sse, wait_until
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

SESSION = {"x-claude-code-session-id": "e2e-session"}


def rows(gateway: Gateway, sql: str) -> list[tuple]:
    with sqlite3.connect(gateway.workdir / "lynkr.db") as conn:
        return conn.execute(sql).fetchall()


def test_usage_rows_and_turns_are_written_once(make_gateway: Callable[..., Gateway],
                                               mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway()
    first = message_body("What is in this repo?")
    assert gateway.post(first, headers={**SESSION, "x-request-id": "req-e2e-1"}).status_code == 200
    answer = {"role": "assistant", "content": [{"type": "text", "text": "Hello from the fake upstream."}]}
    followup = {**first, "stream": True,
                "messages": [*first["messages"], answer, {"role": "user", "content": "And the tests?"}]}
    with gateway.post(followup, headers={**SESSION, "x-request-id": "req-e2e-2"}, stream=True) as response:
        assert read_sse(response).types[-1] == "message_stop"
    # The client reuses its own request id: answered, but the stored row stays the first one.
    assert gateway.post(message_body("Again?"), headers={"x-request-id": "req-e2e-1"}).status_code == 200

    assert wait_until(lambda: len(rows(gateway, "SELECT 1 FROM upstream_attempts")) == 2, timeout=10)
    assert wait_until(lambda: len(rows(gateway, "SELECT 1 FROM turns")) == 4, timeout=10)
    requests = rows(gateway, "SELECT request_id, session_id, stream, status, provider, input_tokens > 0 "
                             "FROM client_requests ORDER BY id")
    assert requests == [("req-e2e-1", "e2e-session", 0, 200, "databricks", 1),
                        ("req-e2e-2", "e2e-session", 1, 200, "databricks", 1)]
    attempts = rows(gateway, "SELECT r.request_id, a.attempt, a.status FROM upstream_attempts a "
                             "JOIN client_requests r ON r.id = a.request_id ORDER BY a.id")
    assert attempts == [("req-e2e-1", 1, 200), ("req-e2e-2", 1, 200)]
    # The first answer, resent by the client as history, is the turn already stored from the response.
    turns = rows(gateway, "SELECT position, role, source FROM turns WHERE session_id = 'e2e-session' "
                          "ORDER BY position")
    assert turns == [(0, "user", "client"), (1, "assistant", "response"), (2, "user", "client"),
                     (3, "assistant", "response")]
    assert len(mocked_upstream.requests) == 3
