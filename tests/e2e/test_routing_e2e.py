"""Routing, fallback, circuit breakers and load shedding through real gunicorn.

Each test starts ``lynkr serve`` over a fake Ollama (:mod:`tests.fakes.ollama_upstream`) and the
strict fake Databricks endpoint (``mocked_upstream``). Which worker served a request is read
from ``/proc``: the test keeps its connection open until the answer is in, and the gateway
worker holding the server side of that TCP connection is the one that served it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body, read_sse, wait_until
from tests.fakes.anthropic_upstream import DEFAULT_TEXT as DATABRICKS_TEXT
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.ollama_upstream import DEFAULT_TEXT as OLLAMA_TEXT
from tests.fakes.ollama_upstream import OPENAI_CHAT_PATH, ChatReply, ErrorReply, FakeOllama, Gate, Hang

OPENROUTER_KEY = "sk-or-fake-0123456789abcdef"
BREAKER_THRESHOLD = 5
DB_DEADLINE_S = 10.0
# For requests' streamed responses: ``requests.post`` closes its session before the body is read,
# and urllib3 (2.8 here) then puts the connection back into the orphaned pool instead of closing
# it, so it stays open until garbage collection and a stopping worker lingers 2 s on it.
CLOSE = {"Connection": "close"}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    """A fake Ollama whose model takes tools."""
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused, and nothing else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def hybrid_env(ollama_url: str, **overrides: Any) -> dict[str, Any]:
    """Tool-count routing with Ollama first and Databricks (the fake) as the fallback."""
    return {"PREFER_OLLAMA": "true", "FALLBACK_ENABLED": "true", "FALLBACK_PROVIDER": "databricks",
            "OLLAMA_ENDPOINT": ollama_url, **overrides}


# -- one request on its own connection, and which worker served it ---------------------------------


@dataclass
class Exchange:
    """A response read in full, and the pid of the gateway worker that served it."""

    status: int
    headers: dict[str, str]
    body: bytes
    worker: int | None
    events: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(gateway: Gateway, method: str, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Exchange:
    """One request on a fresh connection, kept open until the serving worker has been identified."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.connect()
        local_port = conn.sock.getsockname()[1]
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers={**ANTHROPIC_HEADERS, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        worker = serving_worker(gateway, local_port)
        result = Exchange(response.status, {k.lower(): v for k, v in response.getheaders()}, data, worker)
    finally:
        conn.close()
    if result.headers.get("content-type", "").startswith("text/event-stream"):
        result.events = [frame.json() for frame in SSEDecoder().feed(data)]
    return result


def worker_pids(gateway: Gateway) -> set[int]:
    """The pids of the gateway master's children (its gunicorn workers)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == gateway.proc.pid:
                pids.add(int(entry.name))
    return pids


def serving_worker(gateway: Gateway, client_port: int) -> int | None:
    """The worker holding the gateway's end of the connection from ``client_port``."""
    inode = _tcp_inode(gateway.port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in worker_pids(gateway):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:  # not Linux: workers cannot be told apart
        return None
    for line in table.splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
            return inode or None
    return None


# -- usage rows ----------------------------------------------------------------------------------


def usage_rows(gateway: Gateway, request_id: str, attempts: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``client_requests`` row of ``request_id`` and its ``upstream_attempts`` rows, waiting (the
    background writer inserts them after the response) until ``attempts`` attempt rows are there."""
    path = gateway.env["SESSION_DB_PATH"]
    found: list[Any] = []

    def read() -> bool:
        if not Path(path).exists():
            return False
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            try:
                row = db.execute("SELECT * FROM client_requests WHERE request_id = ?", (request_id,)).fetchone()
                rows = [] if row is None else db.execute(
                    "SELECT * FROM upstream_attempts WHERE request_id = ? ORDER BY attempt", (row["id"],)).fetchall()
            except sqlite3.OperationalError:  # tables not created yet, or locked
                return False
        found[:] = [row, rows]
        return row is not None and len(rows) >= attempts

    assert wait_until(read, timeout=DB_DEADLINE_S, interval=0.05), (
        f"no usage rows with {attempts} attempts for {request_id} after {DB_DEADLINE_S} s: {found}")
    row, rows = found
    return dict(row), [dict(r) for r in rows]


# -- helpers -------------------------------------------------------------------------------------


def tools(count: int) -> list[dict[str, Any]]:
    """``count`` client tool definitions."""
    return [{"name": f"tool_{n}", "description": f"Test tool number {n}.",
             "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
            for n in range(count)]


class SSEReader:
    """Reads one SSE response in steps, from a single iterator (a second ``iter_content`` after
    stopping the first would find the connection released)."""

    def __init__(self, response: requests.Response) -> None:
        self._chunks = response.iter_content(chunk_size=None)
        self._decoder = SSEDecoder()
        self.events: list[dict[str, Any]] = []

    def read(self, until: str | None = None) -> list[dict[str, Any]]:
        """Every event so far, reading on until an event of type ``until`` arrives (or the end)."""
        for chunk in self._chunks:
            self.events += [frame.json() for frame in self._decoder.feed(chunk)]
            if until is not None and any(e["type"] == until for e in self.events):
                break
        return self.events


def assert_clean_stream(events: list[dict[str, Any]], text: str) -> None:
    """A complete, valid stream with no error event, carrying ``text``."""
    types = [e["type"] for e in events]
    assert "error" not in types, events
    validate_stream(events)
    assert types[-1] == "message_stop"
    assert "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta") == text


# -- Ollama down: fallback before the first byte --------------------------------------------------


def test_ollama_down_falls_back_to_databricks(make_gateway: Callable[..., Gateway], refused_port: int,
                                              mocked_upstream: FakeAnthropicUpstream) -> None:
    """Ollama refuses connections: a tool-free request, JSON and streamed, is answered by Databricks
    with no error the client can see, and its usage rows show the failed Ollama attempt first."""
    gateway = make_gateway(**hybrid_env(f"http://127.0.0.1:{refused_port}"))

    plain = exchange(gateway, "POST", "/v1/messages", message_body(), {"X-Request-ID": "req_down_json"})
    streamed = exchange(gateway, "POST", "/v1/messages", message_body(stream=True),
                        {"X-Request-ID": "req_down_stream"})

    assert plain.status == 200, plain.body
    assert plain.json()["content"] == [{"type": "text", "text": DATABRICKS_TEXT}]
    assert streamed.status == 200, streamed.body
    assert_clean_stream(streamed.events, DATABRICKS_TEXT)
    for answer in (plain, streamed):
        assert answer.headers["x-lynkr-provider"] == "databricks"
        assert answer.headers["x-lynkr-route-reason"] == "fallback"
    assert len(mocked_upstream.message_requests()) == 2

    for request_id, stream in (("req_down_json", False), ("req_down_stream", True)):
        row, attempts = usage_rows(gateway, request_id, attempts=2)
        assert (row["status"], row["provider"], row["route_reason"], bool(row["stream"])) == (
            200, "databricks", "fallback", stream)
        ollama_try, databricks_try = attempts
        assert ollama_try["provider"] == "ollama"
        assert ollama_try["status"] != 200, ollama_try
        assert ollama_try["error_type"], ollama_try
        assert ollama_try["route_reason"] == "tools_under_ollama_limit"
        assert (databricks_try["provider"], databricks_try["status"], databricks_try["route_reason"]) == (
            "databricks", 200, "fallback:service_unavailable")
        assert databricks_try["error_type"] is None


# -- the circuit breaker every worker shares ------------------------------------------------------


def test_breaker_opened_by_failures_is_shared_by_all_workers(make_gateway: Callable[..., Gateway],
                                                             ollama: FakeOllama,
                                                             mocked_upstream: FakeAnthropicUpstream) -> None:
    """Ollama answers 500: five failures open its breaker; afterwards no worker — including one that
    saw none of the failures itself — calls Ollama again, and every request still succeeds."""
    ollama.responder = lambda request: ErrorReply(500, "fake Ollama failure")
    gateway = make_gateway(**hybrid_env(ollama.url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=BREAKER_THRESHOLD,
                                        API_RETRY_MAX_RETRIES=0, WEB_CONCURRENCY=2))
    workers = worker_pids(gateway)
    assert len(workers) == 2, workers

    failed_on: Counter[int | None] = Counter()
    for number in range(BREAKER_THRESHOLD):
        answer = exchange(gateway, "POST", "/v1/messages", message_body(stream=number % 2 == 1))
        assert answer.status == 200, answer.body
        assert (answer.headers["x-lynkr-provider"], answer.headers["x-lynkr-route-reason"]) == (
            "databricks", "fallback")
        if answer.events:
            assert_clean_stream(answer.events, DATABRICKS_TEXT)
        failed_on[answer.worker] += 1
    assert len(ollama.chat_requests()) == BREAKER_THRESHOLD
    assert set(failed_on) <= workers, failed_on
    connections = ollama.connections_accepted

    views = [exchange(gateway, "GET", "/metrics/circuit-breakers") for _ in range(4)]
    for view in views:
        assert view.status == 200
        breaker = view.json()["breakers"]["ollama"]
        assert breaker["state"] == "OPEN", breaker
        assert breaker["failures"] == BREAKER_THRESHOLD

    # Fresh connections until each worker has served two requests with the breaker open. At most
    # one worker can have seen five failures itself, so the other refusing Ollama proves sharing.
    served: Counter[int | None] = Counter()
    for number in range(60):
        answer = exchange(gateway, "POST", "/v1/messages", message_body(stream=number % 2 == 1),
                          {"X-Request-ID": f"req_open_{number}"})
        assert answer.status == 200, answer.body
        assert (answer.headers["x-lynkr-provider"], answer.headers["x-lynkr-route-reason"]) == (
            "databricks", "fallback")
        if answer.events:
            assert_clean_stream(answer.events, DATABRICKS_TEXT)
        served[answer.worker] += 1
        if all(served[pid] >= 2 for pid in workers):
            break
    assert all(served[pid] >= 2 for pid in workers), f"requests per worker: {dict(served)}"

    assert len(ollama.chat_requests()) == BREAKER_THRESHOLD, "a request reached Ollama with its breaker open"
    assert ollama.connections_accepted == connections, "a connection reached Ollama with its breaker open"
    row, attempts = usage_rows(gateway, "req_open_0", attempts=1)
    assert [(a["provider"], a["status"]) for a in attempts] == [("databricks", 200)]
    assert row["status"] == 200


# -- no fallback once the client has bytes --------------------------------------------------------


def test_no_fallback_after_the_first_byte(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                          mocked_upstream: FakeAnthropicUpstream) -> None:
    """Ollama streams three lines and drops the connection: the client keeps its 200 and gets an SSE
    ``error`` event at the end; Databricks is never asked to start over."""
    ollama.script(ChatReply(pieces=["one ", "two ", "three"], die=True))
    gateway = make_gateway(**hybrid_env(ollama.url, API_RETRY_MAX_RETRIES=2))

    with gateway.post(message_body(stream=True), stream=True,
                      headers={"X-Request-ID": "req_dies", **CLOSE}) as response:
        assert response.status_code == 200
        assert response.headers["x-lynkr-provider"] == "ollama"
        assert response.headers["x-lynkr-route-reason"] == "tools_under_ollama_limit"
        seen = read_sse(response)

    assert seen.types[0] == "message_start"
    assert seen.types[-1] == "error", seen.types
    assert seen.events[-1]["error"]["type"] == "api_error"
    assert "message_stop" not in seen.types
    assert seen.text() == "one two three"
    assert len(ollama.chat_requests()) == 1
    assert mocked_upstream.requests == []

    row, attempts = usage_rows(gateway, "req_dies", attempts=1)
    assert (row["provider"], row["status"]) == ("ollama", 502)
    assert [a["provider"] for a in attempts] == ["ollama"]


# -- load shedding -------------------------------------------------------------------------------


def test_load_shedding_refuses_new_work_but_not_health(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                                       mocked_upstream: FakeAnthropicUpstream) -> None:
    """One worker, at most one model request in flight: while a stream is held open, a second
    request gets 503 ``overloaded_error`` with ``Retry-After`` before any upstream call, and
    ``/health/live`` still answers; once the stream ends, requests are admitted again."""
    gate = Gate()
    ollama.script(ChatReply(pieces=["held ", gate, "then released"]))
    gateway = make_gateway(**hybrid_env(ollama.url, WEB_CONCURRENCY=1, LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD=1))

    with gateway.post(message_body(stream=True), stream=True, headers=CLOSE) as held:
        assert held.status_code == 200
        reader = SSEReader(held)
        reader.read(until="content_block_delta")
        assert gate.reached.wait(5)

        for body in (message_body(), message_body(stream=True)):
            shed = exchange(gateway, "POST", "/v1/messages", body)
            assert shed.status == 503, shed.body
            assert shed.headers["retry-after"] == "5"
            assert shed.headers["content-type"] == "application/json"
            assert shed.json()["type"] == "error"
            assert shed.json()["error"]["type"] == "overloaded_error"
        live = exchange(gateway, "GET", "/health/live")
        assert live.status == 200
        assert live.json() == {"status": "ok"}
        assert len(ollama.chat_requests()) == 1
        assert mocked_upstream.requests == []

        gate.release.set()
        events = reader.read()

    assert_clean_stream(events, "held then released")

    def admitted() -> bool:
        return exchange(gateway, "POST", "/v1/messages", message_body()).status == 200

    assert wait_until(admitted, timeout=5, interval=0.1)
    assert len(ollama.chat_requests()) == 2


# -- tool-count tiers ----------------------------------------------------------------------------


def test_tool_count_tiers(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                          mocked_upstream: FakeAnthropicUpstream) -> None:
    """``PREFER_OLLAMA``: fewer than 3 tools → Ollama, fewer than 15 → OpenRouter (here Ollama's
    OpenAI-compatible endpoint), more → the fallback provider, each with its route reason."""
    gateway = make_gateway(**hybrid_env(ollama.url, OPENROUTER_API_KEY=OPENROUTER_KEY,
                                        OPENROUTER_ENDPOINT=ollama.url + OPENAI_CHAT_PATH))

    small = exchange(gateway, "POST", "/v1/messages", message_body(tools=tools(2)))
    small_stream = exchange(gateway, "POST", "/v1/messages", message_body(stream=True, tools=tools(2)))
    medium = exchange(gateway, "POST", "/v1/messages", message_body(tools=tools(10)))
    large = exchange(gateway, "POST", "/v1/messages", message_body(tools=tools(20)))

    routed = [(a.status, a.headers.get("x-lynkr-provider"), a.headers.get("x-lynkr-route-reason"))
              for a in (small, small_stream, medium, large)]
    assert routed == [
        (200, "ollama", "tools_under_ollama_limit"),
        (200, "ollama", "tools_under_ollama_limit"),
        (200, "openrouter", "tools_under_cloud_limit"),
        (200, "databricks", "tools_over_cloud_limit"),
    ], [a.body[:300] for a in (small, small_stream, medium, large)]
    assert small.json()["content"] == [{"type": "text", "text": OLLAMA_TEXT}]
    assert_clean_stream(small_stream.events, OLLAMA_TEXT)
    assert medium.json()["content"] == [{"type": "text", "text": OLLAMA_TEXT}]
    assert large.json()["content"] == [{"type": "text", "text": DATABRICKS_TEXT}]

    chats = ollama.chat_requests()
    assert [len(r.body["tools"]) for r in chats] == [2, 2]
    assert [r.body["stream"] for r in chats] == [False, True]
    assert ollama.show_requests(), "Ollama's tool support was not asked"
    (openrouter,) = ollama.requests_to(OPENAI_CHAT_PATH)
    assert len(openrouter.body["tools"]) == 10
    assert openrouter.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    (databricks,) = mocked_upstream.message_requests()
    assert len(databricks.body["tools"]) == 20


def test_model_without_tool_support_is_skipped(make_gateway: Callable[..., Gateway],
                                               mocked_upstream: FakeAnthropicUpstream) -> None:
    """Ollama's ``/api/show`` lists no ``tools``: a request with tools goes straight to the fallback
    provider without a chat request to Ollama; a tool-free one still goes to Ollama."""
    with FakeOllama(capabilities=["completion"]) as ollama:
        gateway = make_gateway(**hybrid_env(ollama.url))

        with_tools = exchange(gateway, "POST", "/v1/messages", message_body(tools=tools(2)))
        without = exchange(gateway, "POST", "/v1/messages", message_body())

        assert (with_tools.status, with_tools.headers["x-lynkr-provider"]) == (200, "databricks"), with_tools.body
        assert with_tools.headers["x-lynkr-route-reason"] == "fallback"
        assert (without.status, without.headers["x-lynkr-provider"]) == (200, "ollama"), without.body
        assert [r.body.get("tools") for r in ollama.chat_requests()] == [None]
        assert [r.body["model"] for r in ollama.show_requests()] == ["qwen2.5-coder:7b"]
        (databricks,) = mocked_upstream.message_requests()
        assert len(databricks.body["tools"]) == 2


# -- failures that fall back, and what they do to the breaker --------------------------------------


def breaker_view(gateway: Gateway, name: str = "ollama") -> dict[str, Any]:
    """``/metrics/circuit-breakers`` for one provider."""
    view = exchange(gateway, "GET", "/metrics/circuit-breakers")
    assert view.status == 200
    return view.json()["breakers"][name]


def test_rate_limits_fall_back_without_opening_the_breaker(make_gateway: Callable[..., Gateway],
                                                          ollama: FakeOllama,
                                                          mocked_upstream: FakeAnthropicUpstream) -> None:
    """429 and 529 from Ollama both hand over to Databricks; only the 529s count toward the breaker."""
    ollama.script(*[ErrorReply(429, "too many requests", headers={"retry-after": "1"})] * 3,
                  *[ErrorReply(529, "server busy")] * 2)
    gateway = make_gateway(**hybrid_env(ollama.url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=2, API_RETRY_MAX_RETRIES=0))

    for number in range(3):
        answer = exchange(gateway, "POST", "/v1/messages", message_body(), {"X-Request-ID": f"req_429_{number}"})
        assert (answer.status, answer.headers["x-lynkr-provider"]) == (200, "databricks"), answer.body
    assert (breaker_view(gateway)["state"], breaker_view(gateway)["failures"]) == ("CLOSED", 0)

    for number in range(2):
        answer = exchange(gateway, "POST", "/v1/messages", message_body(stream=True),
                          {"X-Request-ID": f"req_529_{number}"})
        assert (answer.status, answer.headers["x-lynkr-provider"]) == (200, "databricks"), answer.body
        assert_clean_stream(answer.events, DATABRICKS_TEXT)
    assert breaker_view(gateway)["state"] == "OPEN"
    assert len(ollama.chat_requests()) == 5

    _, attempts = usage_rows(gateway, "req_429_0", attempts=2)
    assert [(a["provider"], a["status"], a["error_type"]) for a in attempts] == [
        ("ollama", 429, "rate_limit_error"), ("databricks", 200, None)]
    _, attempts = usage_rows(gateway, "req_529_1", attempts=2)
    assert [(a["provider"], a["status"], a["error_type"]) for a in attempts] == [
        ("ollama", 529, "overloaded_error"), ("databricks", 200, None)]


def test_ollama_timeout_falls_back(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                   mocked_upstream: FakeAnthropicUpstream) -> None:
    """Ollama accepts the request and never answers: after ``OLLAMA_TIMEOUT_MS`` Databricks answers,
    JSON and streamed, within the keepalive commit window (so the client still gets a clean 200)."""
    ollama.script(Hang(), Hang())
    gateway = make_gateway(**hybrid_env(ollama.url, OLLAMA_TIMEOUT_MS=800, API_RETRY_MAX_RETRIES=0))

    started = time.monotonic()
    plain = exchange(gateway, "POST", "/v1/messages", message_body(), {"X-Request-ID": "req_slow_json"})
    streamed = exchange(gateway, "POST", "/v1/messages", message_body(stream=True),
                        {"X-Request-ID": "req_slow_stream"})
    elapsed = time.monotonic() - started

    assert (plain.status, plain.headers["x-lynkr-provider"]) == (200, "databricks"), plain.body
    assert (streamed.status, streamed.headers["x-lynkr-provider"]) == (200, "databricks"), streamed.body
    assert_clean_stream(streamed.events, DATABRICKS_TEXT)
    assert 1.6 <= elapsed < 8, f"two 0.8 s timeouts took {elapsed:.2f} s"
    for request_id in ("req_slow_json", "req_slow_stream"):
        _, attempts = usage_rows(gateway, request_id, attempts=2)
        assert [(a["provider"], a["status"], a["error_type"]) for a in attempts] == [
            ("ollama", 504, "timeout_error"), ("databricks", 200, None)]


def test_open_breaker_recovers_through_one_probe(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                                 mocked_upstream: FakeAnthropicUpstream) -> None:
    """Two failures open the breaker; past ``CIRCUIT_BREAKER_TIMEOUT`` a healthy Ollama gets one probe
    at a time, and two successes close the breaker again."""
    ollama.responder = lambda request: ErrorReply(500, "fake Ollama failure")
    gateway = make_gateway(**hybrid_env(ollama.url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=2,
                                        CIRCUIT_BREAKER_TIMEOUT=3000, API_RETRY_MAX_RETRIES=0))

    for _ in range(2):
        assert exchange(gateway, "POST", "/v1/messages", message_body()).headers["x-lynkr-provider"] == "databricks"
    opened = breaker_view(gateway)
    assert opened["state"] == "OPEN"
    assert exchange(gateway, "POST", "/v1/messages", message_body()).headers["x-lynkr-provider"] == "databricks"
    assert len(ollama.chat_requests()) == 2

    ollama.responder = None
    time.sleep(max(0.0, opened["next_attempt_at"] - time.time()) + 0.1)
    probe = exchange(gateway, "POST", "/v1/messages", message_body())
    assert (probe.status, probe.headers["x-lynkr-provider"]) == (200, "ollama"), probe.body
    assert probe.headers["x-lynkr-route-reason"] == "tools_under_ollama_limit"
    half = breaker_view(gateway)
    assert (half["state"], half["successes"]) == ("HALF_OPEN", 1)

    second = exchange(gateway, "POST", "/v1/messages", message_body(stream=True))
    assert (second.status, second.headers["x-lynkr-provider"]) == (200, "ollama"), second.body
    assert_clean_stream(second.events, OLLAMA_TEXT)
    assert breaker_view(gateway)["state"] == "CLOSED"
    assert len(ollama.chat_requests()) == 4


def test_open_breaker_also_skips_the_capability_probe(make_gateway: Callable[..., Gateway], ollama: FakeOllama,
                                                      mocked_upstream: FakeAnthropicUpstream) -> None:
    """Once Ollama's breaker is open, a request with tools fails over at once: no ``/api/show``
    request (which could block for up to 10 s on a wedged server) and no connection to Ollama."""
    ollama.responder = lambda request: ErrorReply(500, "fake Ollama failure")
    gateway = make_gateway(**hybrid_env(ollama.url, CIRCUIT_BREAKER_FAILURE_THRESHOLD=1, API_RETRY_MAX_RETRIES=0,
                                        WEB_CONCURRENCY=1))
    assert exchange(gateway, "POST", "/v1/messages", message_body()).headers["x-lynkr-provider"] == "databricks"
    assert breaker_view(gateway)["state"] == "OPEN"
    connections = ollama.connections_accepted
    ollama.show_delay = 3.0  # a wedged server: accepts, answers late

    started = time.monotonic()
    answer = exchange(gateway, "POST", "/v1/messages", message_body(tools=tools(2)))
    elapsed = time.monotonic() - started

    assert (answer.status, answer.headers["x-lynkr-provider"]) == (200, "databricks"), answer.body
    assert len(ollama.chat_requests()) == 1
    assert ollama.show_requests() == [], "Ollama's /api/show was asked with its breaker open"
    assert ollama.connections_accepted == connections
    assert elapsed < 1.5, f"the request waited {elapsed:.1f} s on Ollama with its breaker open"
