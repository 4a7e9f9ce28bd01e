"""The Streamable HTTP transport against a scripted MCP endpoint on loopback: headers, sessions, answers, failures."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.mcp.http import ACCEPT, HttpTransport
from app.mcp.jsonrpc import parse_batch
from app.mcp.transport import TransportClosed, TransportError
from tests.fakes.mcp_sink import RecordingSink

VERSION = "2025-11-25"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Seen:
    method: str
    headers: dict[str, str]
    body: Any


def json_reply(payload: Any, **headers: str) -> Reply:
    return Reply(200, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode())


def sse_reply(*events: tuple[str, str]) -> Reply:
    body = "".join(f"event: {name}\ndata: {data}\n\n" for name, data in events).encode()
    return Reply(200, {"Content-Type": "text/event-stream; charset=utf-8"}, body)


def result(request_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


class Endpoint:
    """An MCP endpoint on loopback: ``answer(seen) -> Reply`` decides each reply; every request is kept."""

    def __init__(self) -> None:
        self.answer: Callable[[Seen], Reply] = lambda seen: Reply(405)
        self.seen: list[Seen] = []
        self._changed = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(self.command, dict(self.headers.items()), json.loads(raw) if raw else None)
                with endpoint._changed:
                    endpoint.seen.append(seen)
                    endpoint._changed.notify_all()
                reply = endpoint.answer(seen)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mcp"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def wait_seen(self, count: int, timeout_s: float = 10.0) -> list[Seen]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.seen) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {len(self.seen)} requests arrived: {self.seen}")
                self._changed.wait(left)
            return list(self.seen)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.stop()


@pytest.fixture
def transports() -> Iterator[list[HttpTransport]]:
    made: list[HttpTransport] = []
    yield made
    for transport in made:
        transport.close()


def opened(transports: list[HttpTransport], url: str, sink: RecordingSink, **kwargs: Any) -> HttpTransport:
    transport = HttpTransport("web", url, **kwargs)
    transports.append(transport)
    transport.open(sink)
    return transport


def initialize(request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": {"protocolVersion": VERSION}}


def test_a_json_answer_reaches_the_sink_and_the_session_id_rides_on_every_later_request(
        endpoint: Endpoint, transports: list[HttpTransport]) -> None:
    answers = {"initialize": json_reply(result(1, {"protocolVersion": VERSION}), **{"Mcp-Session-Id": "s-1"}),
               "tools/list": json_reply(result(2, {"tools": []}), **{"Mcp-Session-Id": "other"})}

    def answer(seen: Seen) -> Reply:
        if seen.method != "POST":
            return Reply(405)
        return answers.get(seen.body.get("method", ""), Reply(202))

    endpoint.answer = answer
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink, headers={"Authorization": "Bearer manifest-token"})
    transport.send(initialize())
    sink.wait(messages=1, failures=1)
    assert sink.messages == [result(1, {"protocolVersion": VERSION})]
    # After the answer the POST also reports "no response" for id 1: the client ignores it for an answered id.
    assert [(rid, type(exc), str(exc)) for rid, exc in sink.failures] == [
        (1, TransportError, f"{endpoint.url} ended its answer without a response")]
    assert transport.session_id == "s-1"
    first = endpoint.seen[0]
    assert (first.method, first.body) == ("POST", initialize())
    assert first.headers["Accept"] == ACCEPT == "application/json, text/event-stream"
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Authorization"] == "Bearer manifest-token"
    assert "Mcp-Session-Id" not in first.headers
    assert "MCP-Protocol-Version" not in first.headers

    transport.negotiated(VERSION)
    transport.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    transport.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    sink.wait(messages=2)
    later = [seen for seen in endpoint.wait_seen(4)[1:] if seen.method == "POST"]
    assert sorted(seen.body["method"] for seen in later) == ["notifications/initialized", "tools/list"]
    for seen in later:
        assert seen.headers["Mcp-Session-Id"] == "s-1"
        assert seen.headers["MCP-Protocol-Version"] == VERSION
    assert transport.session_id == "s-1"  # only initialize may set it
    assert sink.messages[1] == result(2, {"tools": []})


def test_a_notification_answered_202_delivers_nothing(endpoint: Endpoint, transports: list[HttpTransport]) -> None:
    endpoint.answer = lambda seen: Reply(202)
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink)
    transport.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    transport.send({"jsonrpc": "2.0", "id": 9, "result": {}})  # our answer to the server's ping
    endpoint.wait_seen(2)
    time.sleep(0.2)
    assert (sink.messages, sink.failures, sink.reasons) == ([], [], [])


def test_an_sse_answer_delivers_each_message_event_in_order(endpoint: Endpoint,
                                                            transports: list[HttpTransport]) -> None:
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    endpoint.answer = lambda seen: sse_reply(("message", json.dumps(progress)), ("ping", "{}"),
                                             ("message", " "), ("message", json.dumps(result(3, {"ok": True}))))
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink)
    transport.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {}})
    sink.wait(messages=2, failures=1)
    assert sink.messages == [progress, result(3, {"ok": True})]


@pytest.mark.parametrize(("reply", "why"), [
    (Reply(500), "{url} answered HTTP 500"),
    (Reply(404), "{url} answered HTTP 404"),  # without a session a 404 is only an error
    (Reply(200, {"Content-Type": "text/plain"}, b"hi"), "{url} answered with content type 'text/plain'"),
    (Reply(200, {}, b"{}"), "{url} answered with content type 'none'"),
    (Reply(200, {"Content-Type": "application/json"}, b"{nope"), "{url} sent a malformed message: "),
    (Reply(200, {"Content-Type": "application/json"}, b'{"jsonrpc": "2.0"}'), "{url} sent a malformed message: "),
    (sse_reply(("message", json.dumps({"jsonrpc": "2.0", "method": "notifications/progress"}))),
     "{url} ended its answer without a response"),
])
def test_a_request_that_gets_no_usable_answer_fails_with_why(endpoint: Endpoint, transports: list[HttpTransport],
                                                             reply: Reply, why: str) -> None:
    endpoint.answer = lambda seen: reply

    class Strict(RecordingSink):
        def message(self, payload: Any) -> None:
            parse_batch(payload)  # as the client does: raises ProtocolError for what is not JSON-RPC
            super().message(payload)

    sink = Strict()
    transport = opened(transports, endpoint.url, sink)
    transport.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {}})
    sink.wait(failures=1)
    [(request_id, exc)] = sink.failures
    assert request_id == 4
    assert type(exc) is TransportError
    assert str(exc).startswith(why.format(url=endpoint.url))
    assert sink.reasons == []


def test_an_unreachable_server_fails_the_request(transports: list[HttpTransport]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"
    sink = RecordingSink()
    opened(transports, url, sink).send(initialize(5))
    sink.wait(failures=1)
    assert [(rid, type(exc), str(exc)) for rid, exc in sink.failures] == [
        (5, TransportError, f"could not reach {url}: ConnectionError")]


def test_a_failed_notification_is_logged_not_reported(endpoint: Endpoint, transports: list[HttpTransport],
                                                      log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.mcp.http")
    endpoint.answer = lambda seen: Reply(503)
    sink = RecordingSink()
    opened(transports, endpoint.url, sink).send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    endpoint.wait_seen(1)
    deadline = time.monotonic() + 5
    while not records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.getMessage() for r in records] == [f"MCP server web: {endpoint.url} answered HTTP 503"]
    assert records[0].levelno == logging.WARNING
    assert (sink.failures, sink.reasons) == ([], [])


def test_a_404_for_a_live_session_closes_the_transport_and_fails_the_request(
        endpoint: Endpoint, transports: list[HttpTransport]) -> None:
    endpoint.answer = lambda seen: (json_reply(result(1, {}), **{"Mcp-Session-Id": "s-1"})
                                    if seen.body["method"] == "initialize" else Reply(404))
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink)
    transport.send(initialize())
    sink.wait(messages=1, failures=1)
    transport.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    sink.wait(failures=2, reasons=1)
    assert sink.reasons == ["the server ended the HTTP session (404)"]
    request_id, exc = sink.failures[1]
    assert (request_id, type(exc), str(exc)) == (2, TransportClosed, "the MCP session expired")


def test_close_ends_the_session_with_one_delete_and_then_refuses_to_send(
        endpoint: Endpoint, transports: list[HttpTransport]) -> None:
    endpoint.answer = lambda seen: (json_reply(result(1, {}), **{"Mcp-Session-Id": "s-1"})
                                    if seen.method == "POST" else Reply(200))
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink)
    transport.send(initialize())
    sink.wait(messages=1)
    transport.close()
    transport.close()
    deletes = [seen for seen in endpoint.wait_seen(2) if seen.method == "DELETE"]
    assert [seen.headers["Mcp-Session-Id"] for seen in deletes] == ["s-1"]
    with pytest.raises(TransportClosed, match=r"^MCP server 'web': the HTTP session is closed$"):
        transport.send(initialize(2))


def test_close_without_a_session_sends_nothing(endpoint: Endpoint) -> None:
    transport = HttpTransport("web", endpoint.url)
    transport.open(RecordingSink())
    transport.close()
    time.sleep(0.1)
    assert endpoint.seen == []


def test_send_before_open_is_transport_closed(endpoint: Endpoint) -> None:
    with pytest.raises(TransportClosed, match=r"^MCP server 'web': the HTTP session is closed$"):
        HttpTransport("web", endpoint.url).send(initialize())
    assert endpoint.seen == []


def test_after_negotiation_the_server_stream_delivers_its_own_messages(endpoint: Endpoint,
                                                                       transports: list[HttpTransport]) -> None:
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    streams = iter([sse_reply(("message", json.dumps(changed)))])
    endpoint.answer = lambda seen: next(streams, Reply(405))  # a second GET: no more streams
    sink = RecordingSink()
    transport = opened(transports, endpoint.url, sink)
    transport.session_id = "s-1"
    transport.negotiated(VERSION)
    sink.wait(messages=1)
    gets = endpoint.wait_seen(2)
    assert sink.messages == [changed]
    assert [seen.method for seen in gets] == ["GET", "GET"]
    assert gets[0].headers["Accept"] == "text/event-stream"
    assert gets[0].headers["Mcp-Session-Id"] == "s-1"
    assert gets[0].headers["MCP-Protocol-Version"] == VERSION
    time.sleep(0.1)
    assert len(endpoint.seen) == 2  # a 405 ends the listening


def test_a_server_stream_that_ends_at_once_is_not_reopened_in_a_tight_loop(
        endpoint: Endpoint, transports: list[HttpTransport]) -> None:
    endpoint.answer = lambda seen: Reply(200, {"Content-Type": "text/event-stream"}, b"")
    transport = opened(transports, endpoint.url, RecordingSink())
    transport.negotiated(VERSION)
    time.sleep(1.0)
    assert len([s for s in endpoint.seen if s.method == "GET"]) <= 3
