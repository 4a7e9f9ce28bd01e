"""Streaming through real gunicorn: keepalive before the upstream answers, held statuses, pings,
client disconnects reaching the upstream, and upstream failures mid-stream."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.anthropic.events import validate_stream
from tests.e2e.helpers import Gateway, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream, Hang, Pause, StreamReply

KEEPALIVE = b": keepalive\n\n"


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """A gateway that commits a silent stream after 300 ms, pings after 500 ms of silence, gives up on
    an upstream silent for 2 s, and does not retry (so each test's upstream sees one request)."""
    return make_gateway(LYNKR_KEEPALIVE_COMMIT_MS=300, LYNKR_PING_INTERVAL_MS=500, LYNKR_UPSTREAM_TIMEOUT_MS=2000,
                        API_RETRY_MAX_RETRIES=0)


def test_keepalive_comments_until_a_slow_upstream_answers(gateway: Gateway,
                                                          mocked_upstream: FakeAnthropicUpstream) -> None:
    """Upstream silent 1.5 s: 200 committed early, ``: keepalive`` comments, then a valid stream."""
    mocked_upstream.script(StreamReply(ev.text_events(["slow ", "but sure"]), head_delay=1.5))

    started = time.monotonic()
    with gateway.post(message_body(stream=True), stream=True) as response:
        headers_after = time.monotonic() - started
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Lynkr-Provider"] == "databricks"
        assert response.headers["X-Lynkr-Model"] == "databricks-claude-sonnet-4-5"
        seen = read_sse(response)

    assert headers_after < 1.0, f"headers took {headers_after:.2f} s; the upstream took 1.5 s"
    before_start = seen.raw[: seen.raw.index(b"event: message_start")]
    assert before_start.count(KEEPALIVE) >= 1
    assert before_start.replace(KEEPALIVE, b"") == b""
    validate_stream(seen.events)
    assert seen.types[-1] == "message_stop"
    assert seen.text() == "slow but sure"


def test_upstream_error_before_commit_keeps_its_status(gateway: Gateway,
                                                       mocked_upstream: FakeAnthropicUpstream) -> None:
    """A 429 within the commit window is the response's status, with retry-after and the error body."""
    mocked_upstream.script(ErrorReply(429, "rate_limit_error", "Too many tokens.", headers={"retry-after": "3"},
                                      delay=0.1))

    with gateway.post(message_body(stream=True), stream=True) as response:
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.headers["content-type"] == "application/json"
        body = response.json()

    assert body["type"] == "error"
    assert body["error"] == {"type": "rate_limit_error", "message": "Too many tokens."}


def test_ping_during_a_pause_after_message_start(gateway: Gateway, mocked_upstream: FakeAnthropicUpstream) -> None:
    """1.2 s of upstream silence between two deltas: a ``ping`` event arrives between them."""
    events = [ev.message_start(), ev.text_start(), ev.text_delta("one "), Pause(1.2), ev.text_delta("two"),
              ev.block_stop(), *ev.message_end()]
    mocked_upstream.script(StreamReply(events))

    with gateway.post(message_body(stream=True), stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response)

    validate_stream(seen.events)
    deltas = [i for i, kind in enumerate(seen.types) if kind == "content_block_delta"]
    assert len(deltas) == 2
    assert "ping" in seen.types[deltas[0] + 1: deltas[1]]
    assert seen.text() == "one two"


def test_server_mode_pings_while_a_tool_call_is_written(make_gateway: Callable[..., Gateway],
                                                         mocked_upstream: FakeAnthropicUpstream,
                                                         tmp_path: Path) -> None:
    """The default mode (WORKSPACE_ROOT set, the agent loop) with two workers: the model writes a
    client tool call's input for 1.6 s, a piece every 0.2 s. The client sees nothing of it until
    the step ends (the upstream is never silent for a ping tick), so it must hear pings meanwhile:
    a proxy would cut a stream silent for its idle timeout."""
    gateway = make_gateway(LYNKR_KEEPALIVE_COMMIT_MS=300, LYNKR_PING_INTERVAL_MS=500, LYNKR_UPSTREAM_TIMEOUT_MS=5000,
                           API_RETRY_MAX_RETRIES=0, WORKSPACE_ROOT=str(tmp_path))
    call = ev.tool_use_events("Bash", {"command": "ls -la"}, tool_id="toolu_bash", preface="Let me look.")
    tool_start = next(i for i, e in enumerate(call) if e["type"] == "content_block_start" and i > 1)
    arguments = json.dumps({"command": "ls -la " + "x" * 40})
    trickle: list[dict[str, Any] | Pause] = []
    for n in range(0, len(arguments), len(arguments) // 8 + 1):
        trickle += [Pause(0.2), {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": arguments[n:n + len(arguments) // 8 + 1]}}]
    mocked_upstream.script(StreamReply([*call[:tool_start + 1], *trickle, *call[tool_start + 3:]]))
    body = message_body("List the files.", stream=True, tools=[
        {"name": "Bash", "description": "Run a command.",
         "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}])

    with gateway.post(body, stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response)

    validate_stream(seen.events)
    text_at = seen.types.index("content_block_delta")
    tool_at = next(i for i, e in enumerate(seen.events)
                   if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use")
    assert "ping" in seen.types[text_at + 1:tool_at]
    assert seen.events[tool_at]["content_block"]["name"] == "Bash"
    assert seen.events[-2]["delta"]["stop_reason"] == "tool_use"


def test_split_frames_are_reassembled(gateway: Gateway, mocked_upstream: FakeAnthropicUpstream) -> None:
    """Upstream frames cut mid-line, mid-CRLF and mid-UTF-8 still give the client whole events."""
    frames = b"".join(ev.sse_frame(e) for e in ev.text_events(["héllo ", "wörld ✓"])).replace(b"\n", b"\r\n")
    cuts = sorted({3, 17, 40, 41, len(frames) // 2, frames.index("ö".encode()) + 1, len(frames) - 3})
    chunks = [frames[a:b] for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True)]
    mocked_upstream.script(StreamReply(chunks=chunks, event_delay=0.02))

    with gateway.post(message_body(stream=True), stream=True) as response:
        seen = read_sse(response)

    validate_stream(seen.events)
    assert seen.text() == "héllo wörld ✓"


def test_client_disconnect_closes_the_upstream_within_a_second(gateway: Gateway,
                                                               mocked_upstream: FakeAnthropicUpstream) -> None:
    """The client drops its socket mid-stream; the upstream sees its connection close within 1 s."""
    events = [ev.message_start(), ev.text_start(), *(ev.text_delta(f"{n} ") for n in range(300)),
              ev.block_stop(), *ev.message_end()]
    mocked_upstream.script(StreamReply(events, event_delay=0.1))

    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    try:
        sock.sendall(_raw_post(gateway, message_body(stream=True)))
        received = b""
        while received.count(b"event: content_block_delta") < 3:
            data = sock.recv(65536)
            assert data, f"gateway closed the stream early: {received!r}"
            received += data
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        closed_at = time.monotonic()

    assert received.startswith(b"HTTP/1.1 200")
    [upstream] = mocked_upstream.wait_for_requests(1)
    assert upstream.done.wait(5), "the upstream stream kept going after the client left"
    assert upstream.disconnected_at is not None
    assert upstream.disconnected_at - closed_at < 1.0
    assert upstream.events_sent < 30
    assert not upstream.completed


@pytest.fixture(params=["tools off", "default server mode"])
def either_mode_gateway(request: pytest.FixtureRequest, make_gateway: Callable[..., Gateway],
                        tmp_path: Path) -> Gateway:
    """``gateway``'s settings without Lynkr's tools, and in the mode most users run (``WORKSPACE_ROOT`` set)."""
    workspace = {"WORKSPACE_ROOT": str(tmp_path)} if request.param == "default server mode" else {}
    return make_gateway(LYNKR_KEEPALIVE_COMMIT_MS=300, LYNKR_PING_INTERVAL_MS=500, LYNKR_UPSTREAM_TIMEOUT_MS=2000,
                        API_RETRY_MAX_RETRIES=0, **workspace)


def test_a_client_that_leaves_while_the_stream_opens_is_settled_once_the_open_ends(
        either_mode_gateway: Gateway, mocked_upstream: FakeAnthropicUpstream) -> None:
    """Gone before the upstream answered: one usage row (499) with the attempt, written after the open."""
    gateway = either_mode_gateway
    mocked_upstream.script(StreamReply(ev.text_events(["late"]), head_delay=1.5))

    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(_raw_post(gateway, message_body(stream=True), request_id="req_left_early"))
    mocked_upstream.wait_for_requests(1)
    sock.close()

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(gateway.workdir / "lynkr.db")) as connection:
            return connection.execute(sql, ("req_left_early",)).fetchall()

    assert wait_until(lambda: bool(rows("SELECT status FROM client_requests WHERE request_id = ?")), timeout=10)
    [(status, duration_ms)] = rows("SELECT status, duration_ms FROM client_requests WHERE request_id = ?")
    assert status == 499
    assert duration_ms >= 1400, "the row was settled before the open it records had ended"  # the gateway's clock
    assert rows("SELECT a.attempt, a.status FROM upstream_attempts a JOIN client_requests r ON a.request_id = r.id"
                " WHERE r.request_id = ?") == [(1, 200)]


def test_upstream_dying_mid_stream_ends_with_error_event(gateway: Gateway,
                                                         mocked_upstream: FakeAnthropicUpstream) -> None:
    """The upstream drops its socket after a delta: the client's stream ends in ``error``, never ``message_stop``."""
    mocked_upstream.script(StreamReply([ev.message_start(), ev.text_start(), ev.text_delta("partial")], die=True))

    with gateway.post(message_body(stream=True), stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response)

    validate_stream(seen.events)
    assert seen.types[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert seen.types[-1] == "error"
    assert "message_stop" not in seen.types
    assert seen.events[-1]["error"]["type"] == "api_error"
    assert seen.text() == "partial"


def test_hung_upstream_after_commit_ends_with_timeout_error(gateway: Gateway,
                                                           mocked_upstream: FakeAnthropicUpstream) -> None:
    """An upstream that never answers: keepalives, then a ``timeout_error`` event; the upstream is hung up on."""
    hang = Hang()
    mocked_upstream.script(hang)

    try:
        with gateway.post(message_body(stream=True), stream=True) as response:
            assert response.status_code == 200
            seen = read_sse(response)
        [upstream] = mocked_upstream.wait_for_requests(1)
        assert upstream.done.wait(5)
    finally:
        hang.release.set()

    assert seen.raw.startswith(KEEPALIVE)
    assert seen.types == ["error"]
    assert seen.events[0]["error"]["type"] == "timeout_error"
    assert "databricks" in seen.events[0]["error"]["message"]
    assert upstream.disconnected_at is not None, "the gateway left the hung upstream connection open"


def _raw_post(gateway: Gateway, body: dict, request_id: str = "req_raw") -> bytes:
    payload = json.dumps(body).encode()
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
            f"Content-Type: application/json\r\nanthropic-version: 2023-06-01\r\nX-Request-ID: {request_id}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload
