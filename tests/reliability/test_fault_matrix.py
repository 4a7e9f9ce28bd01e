"""The fault matrix: each provider family, JSON and stream, against what an upstream can do wrong.

Against real fake upstreams on loopback (real sockets, so resets, timeouts and refused connections
are real), through the app, with keys and a daily token budget on and no retries. For every fault:
the client gets the mapped Anthropic error (an HTTP status before the first byte, an ``error`` event
after it), one usage row records that status, the breaker heard exactly one failure (none for a 429),
the budget counter is back where it was, and a healthy request right after succeeds.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.anthropic.sse import SSEDecoder
from app.storage.db import db
from app.storage.models import ClientRequest, UsageCounter
from tests.fakes import anthropic_events as ev
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import ollama_upstream as ollama
from tests.fakes import openai_chunks as oc
from tests.fakes import openai_upstream as openai
from tests.fakes.behaviours import JsonReply, Pause

KEY = "sk-lynkr-matrix-0001"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
# A healthy answer from the in-process fake must never come near the read timeout, even late in a
# full serial run on a slow machine (800 ms was crossed there); a stalled upstream stalls twice as long.
READ_TIMEOUT_MS = 2000
STALL_S = 2 * READ_TIMEOUT_MS / 1000
CONNECT_TIMEOUT_MS = 300
OVERSIZE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """A fault and the client's expected outcome: an HTTP status, or an error event after a 200."""

    behaviour: Callable[[], Any] | None  # None: no upstream answers at all (see ``dead``)
    status: int
    error_type: str
    mid_stream: bool = False
    counts_for_breaker: bool = True
    dead: str = "refused"  # without a behaviour: "refused" (a closed port) or "silent" (no accept)


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """A port whose accept queue is full: a new connection's SYN is dropped, so connecting times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    try:
        yield url
    finally:
        for sock in (*fillers, listener):
            sock.close()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- the Anthropic format (Databricks) --------------------------------------------------------

def _a_partial() -> list[dict[str, Any]]:
    return ev.text_events(["Half an ans"])[:-3]  # started, a delta, no block stop / delta / stop


ANTHROPIC_JSON = {
    "connect-timeout": Fault(None, 504, "timeout_error", dead="silent"),
    "429-retry-after": Fault(lambda: anthropic.ErrorReply(429, headers={"retry-after": "1"},
                                                          error_type="rate_limit_error"),
                             429, "rate_limit_error", counts_for_breaker=False),
    "429": Fault(lambda: anthropic.ErrorReply(429, error_type="rate_limit_error"), 429, "rate_limit_error",
                 counts_for_breaker=False),
    "500": Fault(lambda: anthropic.ErrorReply(500), 500, "api_error"),
    "502": Fault(lambda: anthropic.ErrorReply(502), 502, "api_error"),
    "503": Fault(lambda: anthropic.ErrorReply(503, error_type="overloaded_error"), 503, "overloaded_error"),
    "529": Fault(lambda: anthropic.ErrorReply(529, error_type="overloaded_error"), 529, "overloaded_error"),
    "refused": Fault(None, 502, "api_error"),
    "read-timeout-before-headers": Fault(lambda: JsonReply(delay=STALL_S), 504, "timeout_error"),
    "reset-mid-body": Fault(lambda: JsonReply(body=ev.message([ev.text_block("x" * 500)]), cut_after=60),
                            502, "api_error"),
    "truncated-json": Fault(lambda: anthropic.ErrorReply(200, raw_body=b'{"id": "msg_1", "type": "mess'),
                            502, "api_error"),
    "garbage": Fault(lambda: anthropic.ErrorReply(200, raw_body=b"\x00\xff\xfe not json at all"), 502, "api_error"),
    "200-with-error-body": Fault(lambda: anthropic.ErrorReply(
        200, raw_body=json.dumps(ev.error_body("overloaded_error", "Overloaded")).encode()),
        529, "overloaded_error"),
}

ANTHROPIC_STREAM = {
    **{name: fault for name, fault in ANTHROPIC_JSON.items()
       if name in ("429", "500", "503", "529", "refused")},
    "read-timeout-before-headers": Fault(lambda: anthropic.StreamReply(head_delay=STALL_S), 504, "timeout_error"),
    "read-timeout-mid-stream": Fault(lambda: anthropic.StreamReply(events=[*_a_partial(), Pause(STALL_S)]),
                                     504, "timeout_error", mid_stream=True),
    "reset-mid-stream": Fault(lambda: anthropic.StreamReply(events=_a_partial(), die=True),
                              502, "api_error", mid_stream=True),
    "silent-eof": Fault(lambda: anthropic.StreamReply(events=_a_partial()), 502, "api_error", mid_stream=True),
    "fin-mid-event": Fault(lambda: anthropic.StreamReply(chunks=[
        *(ev.sse_frame(e) for e in _a_partial()), b'event: content_block_delta\ndata: {"type": "content_'],
        die=True), 502, "api_error", mid_stream=True),
    "error-frame": Fault(lambda: anthropic.StreamReply(events=[
        *_a_partial(), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]),
        529, "overloaded_error", mid_stream=True),
    "garbage-event": Fault(lambda: anthropic.StreamReply(chunks=[
        ev.sse_frame(_a_partial()[0]), b"event: content_block_delta\ndata: {not json\n\n"]),
        502, "api_error", mid_stream=True),
    "oversize-event": Fault(lambda: anthropic.StreamReply(events=[
        *_a_partial(), ev.text_delta("y" * (OVERSIZE_LIMIT * 2))]), 502, "api_error", mid_stream=True),
}


# -- the chat-completions format (OpenAI-compatible) ----------------------------------------------

def _o_partial() -> list[dict[str, Any]]:
    return oc.text_chunks(["Half an ans"])[:1]


OPENAI_JSON = {
    "connect-timeout": Fault(None, 504, "timeout_error", dead="silent"),
    "429": Fault(lambda: openai.ErrorReply(429, error_type="rate_limit_exceeded"), 429, "rate_limit_error",
                 counts_for_breaker=False),
    "500": Fault(lambda: openai.ErrorReply(500), 500, "api_error"),
    "503": Fault(lambda: openai.ErrorReply(503), 503, "overloaded_error"),
    "refused": Fault(None, 502, "api_error"),
    "read-timeout-before-headers": Fault(lambda: JsonReply(delay=STALL_S), 504, "timeout_error"),
    "reset-mid-body": Fault(lambda: JsonReply(body=oc.completion("x" * 500), cut_after=60), 502, "api_error"),
    "truncated-json": Fault(lambda: openai.ErrorReply(200, raw_body=b'{"id": "chatcmpl-1", "cho'), 502, "api_error"),
    "200-with-error-body": Fault(lambda: openai.ErrorReply(
        200, raw_body=json.dumps({"error": {"message": "upstream failed", "type": "server_error"}}).encode()),
        500, "api_error"),
}

OPENAI_STREAM = {
    **{name: fault for name, fault in OPENAI_JSON.items() if name in ("429", "500", "503", "refused")},
    "read-timeout-mid-stream": Fault(lambda: openai.StreamReply(chunks=[*_o_partial(), Pause(STALL_S)], done=False),
                                     504, "timeout_error", mid_stream=True),
    "reset-mid-stream": Fault(lambda: openai.StreamReply(chunks=_o_partial(), die=True), 502, "api_error",
                              mid_stream=True),
    "silent-eof": Fault(lambda: openai.StreamReply(chunks=_o_partial(), done=False), 502, "api_error",
                        mid_stream=True),
    "garbage-event": Fault(lambda: openai.StreamReply(chunks=[*_o_partial(), b"data: {not json\n\n"]),
                           502, "api_error", mid_stream=True),
    "empty-choices": Fault(lambda: openai.StreamReply(chunks=[{**_o_partial()[0], "choices": []}] * 3),
                           502, "api_error", mid_stream=True),
}


# -- Ollama's native /api/chat (NDJSON) ----------------------------------------------------------

def _partial_line() -> dict[str, Any]:
    return {"model": ollama.DEFAULT_MODEL, "created_at": "2026-12-07T00:00:00Z",
            "message": {"role": "assistant", "content": "Half an ans"}, "done": False}


OLLAMA_JSON = {
    "connect-timeout": Fault(None, 504, "timeout_error", dead="silent"),
    "500": Fault(lambda: ollama.ErrorReply(500), 500, "api_error"),
    "503": Fault(lambda: ollama.ErrorReply(503), 503, "overloaded_error"),
    "refused": Fault(None, 502, "api_error"),
    "read-timeout-before-headers": Fault(lambda: ollama.ChatReply(head_delay=STALL_S), 504, "timeout_error"),
}

OLLAMA_STREAM = {
    **OLLAMA_JSON,
    "read-timeout-mid-stream": Fault(lambda: ollama.ChatReply(lines=[_partial_line(), Pause(STALL_S)]),
                                     504, "timeout_error", mid_stream=True),
    "reset-mid-stream": Fault(lambda: ollama.ChatReply(lines=[_partial_line()], die=True), 502, "api_error",
                              mid_stream=True),
    "silent-eof": Fault(lambda: ollama.ChatReply(lines=[_partial_line()]), 502, "api_error", mid_stream=True),
}


FAMILIES: dict[str, tuple[type[Any], Callable[[Any], dict[str, Any]]]] = {
    "anthropic": (anthropic.FakeAnthropicUpstream,
                  lambda fake: {"model_provider": "databricks", "databricks_api_base": fake.url}),
    "openai": (openai.FakeOpenAIUpstream,
               lambda fake: {"model_provider": "openai-compatible", "openai_compatible_endpoint": fake.base_url,
                             "openai_compatible_model": "matrix-model"}),
    "ollama": (ollama.FakeOllama,
               lambda fake: {"model_provider": "ollama", "ollama_endpoint": fake.url,
                             "ollama_timeout_ms": READ_TIMEOUT_MS}),
}
TABLES = {(False, "anthropic"): ANTHROPIC_JSON, (True, "anthropic"): ANTHROPIC_STREAM,
          (False, "openai"): OPENAI_JSON, (True, "openai"): OPENAI_STREAM,
          (False, "ollama"): OLLAMA_JSON, (True, "ollama"): OLLAMA_STREAM}
CASES = [(family, stream, name, fault)
         for (stream, family), table in TABLES.items() for name, fault in table.items()]


@pytest.fixture(params=["server-mode", "client-mode"])
def gateway(request: pytest.FixtureRequest, make_app: Callable[..., Flask],
            tmp_path: Path) -> Iterator[tuple[Flask, Any, str, str]]:
    """The app for the case's family, in the default server mode (a workspace, Lynkr's tools on) or
    in client mode."""
    name = request.node.callspec.params["family"]
    fake_class, settings = FAMILIES[name]
    mode = ({"workspace_root": str(tmp_path)} if request.param == "server-mode"
            else {"tool_execution_mode": "client"})
    with fake_class() as fake:
        app = make_app(**mode, api_keys=(KEY,), budget_key_daily_tokens=10_000_000, retry_max_retries=0,
                       fallback_enabled=False,
                       upstream_timeout_ms=READ_TIMEOUT_MS, connect_timeout_ms=CONNECT_TIMEOUT_MS,
                       keepalive_commit_ms=2 * READ_TIMEOUT_MS,  # a timeout before headers is an HTTP error
                       max_upstream_event_bytes=OVERSIZE_LIMIT,
                       breaker_failure_threshold=100, **settings(fake))
        yield app, fake, app.extensions["lynkr"].config.model_provider, request.param
        app.extensions["lynkr"].recorder.flush()


def _counted() -> int:
    with db.connection_context():
        return sum(row.used for row in UsageCounter.select())


def _rows(app: Flask, request_id: str) -> list[tuple[int, str | None]]:
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        return [(row.status, row.error_type) for row in
                ClientRequest.select().where(ClientRequest.request_id == request_id)]


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [frame.json() for frame in SSEDecoder().feed(raw)]


@pytest.mark.parametrize(("family", "stream", "name", "fault"), [
    pytest.param(family, stream, name, fault, id=f"{family}-{'stream' if stream else 'json'}-{name}")
    for family, stream, name, fault in CASES])
def test_every_fault_settles_its_books(gateway: tuple[Flask, Any, str, str], silent_upstream: str, family: str,
                                       stream: bool, name: str, fault: Fault) -> None:
    app, fake, provider, mode = gateway
    if fault.behaviour is None:
        provider_settings = {"databricks": "databricks_api_base", "openai-compatible": "openai_compatible_endpoint",
                             "ollama": "ollama_endpoint"}
        dead_url = silent_upstream if fault.dead == "silent" else _closed_port()
        app = _with_dead_upstream(app, provider_settings[provider], dead_url)
    else:
        fake.script(fault.behaviour())
    client = app.test_client()
    before = _counted()
    request_id = f"req_matrix_{family}_{'s' if stream else 'j'}_{name}".replace("-", "_")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}],
            "stream": stream}

    response = client.post("/v1/messages", json=body, headers={**HEADERS, "X-Request-ID": request_id})

    # In server mode the agent shows nothing of a step before its first visible delta, so a fault
    # that comes before one is still before the first byte: an HTTP error, which is better.
    if fault.mid_stream and (mode == "client-mode" or response.status_code == 200):
        assert response.status_code == 200
        events = _events(response.get_data())
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] == "error"
        assert events[-1]["error"]["type"] == fault.error_type
        assert "message_stop" not in [event["type"] for event in events]
    else:
        assert response.status_code == fault.status, response.get_data(as_text=True)
        envelope = response.get_json()
        assert envelope["type"] == "error"
        assert envelope["error"]["type"] == fault.error_type
        assert envelope["request_id"] == request_id
    assert _rows(app, request_id) == [(fault.status, fault.error_type)]
    failures = app.extensions["lynkr"].breakers.get(provider).snapshot()["failures"]
    assert failures == (1 if fault.counts_for_breaker else 0)
    assert _counted() == before  # the hold was released: a failed request spends nothing

    if fault.behaviour is not None:  # the same worker, the next request: healthy
        healthy = client.post("/v1/messages", json={**body, "stream": False}, headers=HEADERS)
        assert healthy.status_code == 200, healthy.get_data(as_text=True)


def _with_dead_upstream(app: Flask, setting: str, url: str) -> Flask:
    """The app rebuilt with its provider pointed at ``url``, where no upstream answers."""
    from dataclasses import replace

    from app.factory import create_app
    from app.resilience.retry import InProcessStore

    config = app.extensions["lynkr"].config
    return create_app(replace(config, **{setting: url + ("/v1" if "openai" in setting else "")}),
                      drain=app.extensions["lynkr"].drain, breaker_store=InProcessStore())


def test_the_matrix_covers_every_family_and_form() -> None:
    assert {family for family, *_ in CASES} == set(FAMILIES)
    assert sum(len(table) for table in TABLES.values()) == len(CASES)
