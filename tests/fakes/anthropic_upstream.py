"""A scriptable fake Anthropic Messages upstream on 127.0.0.1 (what Lynkr forwards to).

Start it with ``with FakeAnthropicUpstream() as fake:``; ``fake.url`` is its base URL and it
serves ``POST`` on any path ending in ``/v1/messages``. Each request is recorded
(:class:`RecordedRequest`: path, headers, parsed body, and for streams when the client went
away) and answered by the next behaviour of the script (:meth:`FakeAnthropicUpstream.script`),
then by ``fake.responder(request)`` when set, then by a short valid text answer — streamed when
the request says ``"stream": true``.

Behaviours: :class:`JsonReply`, :class:`StreamReply` (events with :class:`Pause` markers, a
delay before the headers or between events, raw byte chunks, or ``die`` to drop the socket
mid-stream), :class:`ErrorReply` and :class:`Hang`. Responses are real HTTP/1.1 with
keep-alive; streams use ``Transfer-Encoding: chunked``, one flushed chunk per event.

``strict=True`` answers 400 to what Databricks' Anthropic endpoint rejects (see
:mod:`tests.fakes.databricks_rules`), and ``token=`` answers 401 unless the request carries
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import anthropic_events as ev
from tests.fakes.databricks_rules import strict_violation


@dataclass
class JsonReply:
    """A JSON answer; ``body=None`` is a short text message echoing the request's model."""

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Pause:
    """A marker inside :attr:`StreamReply.events`: wait this long before the next event."""

    seconds: float


@dataclass
class StreamReply:
    """An SSE answer.

    ``events`` (dicts and :class:`Pause` markers; None: a short text stream) or ``chunks`` (raw
    bytes, one HTTP chunk each, to split frames anywhere). ``head_delay`` waits before the
    status line, ``event_delay`` between items, and ``die`` closes the socket after the last
    item without ending the chunked body.
    """

    events: list[dict[str, Any] | Pause] | None = None
    chunks: list[bytes] | None = None
    head_delay: float = 0.0
    event_delay: float = 0.0
    die: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ErrorReply:
    """An error status with Anthropic's error body (or ``raw_body`` as is)."""

    status: int
    error_type: str = "api_error"
    message: str = "fake upstream error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None


@dataclass
class Hang:
    """Never answers; closes the connection once ``release`` is set (or the fake stops)."""

    release: threading.Event = field(default_factory=threading.Event)


Behaviour = JsonReply | StreamReply | ErrorReply | Hang


@dataclass
class RecordedRequest:
    """One request the fake received, and what became of its answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    behaviour: str = ""
    rejected: str | None = None
    events_sent: int = 0
    completed: bool = False
    disconnected_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def stream(self) -> bool:
        """Whether the request asked for a stream."""
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class _Disconnected(Exception):
    """The peer closed the connection while we were answering."""


class FakeAnthropicUpstream:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, strict: bool = False, token: str | None = None) -> None:
        self.strict = strict
        self.token = token
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[RecordedRequest], Behaviour | None] | None = None
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-anthropic", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The ``Host`` header a client of this server must send."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropicUpstream:
        """Serve on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hung requests, stop streams and close the listening socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropicUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def next_behaviour(self, request: RecordedRequest) -> Behaviour:
        """What to do for ``request``: script, then responder, then the default answer."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return StreamReply() if request.stream else JsonReply()

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` and wake anyone waiting for it."""
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests have arrived; fails the caller after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} upstream requests, got {len(self.requests)}")
                self._changed.wait(remaining)
            return list(self.requests)

    def message_requests(self) -> list[RecordedRequest]:
        """The ``/v1/messages`` requests received so far."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/v1/messages")]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropicUpstream

    def __init__(self, *args: Any) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are the log."""

    @property
    def fake(self) -> FakeAnthropicUpstream:
        return self.server.fake

    def do_GET(self) -> None:
        self._send_json(404, ev.error_body("not_found_error", f"Not found: GET {self.path}"))

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body, time.monotonic())
        self.fake.record(request)
        try:
            self._answer(request)
        except _Disconnected:
            request.disconnected_at = request.disconnected_at or time.monotonic()
            self.close_connection = True
        finally:
            request.done.set()

    def _answer(self, request: RecordedRequest) -> None:
        if not self.path.split("?")[0].endswith("/v1/messages"):
            request.behaviour = "not_found"
            self._send_json(404, ev.error_body("not_found_error", f"Not found: POST {self.path}"))
            return
        problem = self._reject(request)
        if problem is not None:
            status, error_type, text = problem
            request.behaviour, request.rejected = "rejected", text
            self._send_json(status, ev.error_body(error_type, text))
            return
        behaviour = self.fake.next_behaviour(request)
        request.behaviour = type(behaviour).__name__
        if isinstance(behaviour, Hang):
            self._hang(behaviour)
        elif isinstance(behaviour, ErrorReply):
            self._wait(behaviour.delay)
            payload = behaviour.raw_body or json.dumps(ev.error_body(behaviour.error_type, behaviour.message)).encode()
            self._send_bytes(behaviour.status, payload, behaviour.headers)
        elif isinstance(behaviour, JsonReply):
            self._wait(behaviour.delay)
            self._send_json(behaviour.status, behaviour.body or _default_message(request), behaviour.headers)
        else:
            self._stream(request, behaviour)
        request.completed = True

    def _reject(self, request: RecordedRequest) -> tuple[int, str, str] | None:
        fake = self.fake
        if fake.token is not None and request.headers.get("authorization") != f"Bearer {fake.token}":
            return 401, "authentication_error", "Invalid access token."
        if fake.strict:
            text = strict_violation(request.headers, request.body, fake.host)
            if text is not None:
                return 400, "invalid_request_error", text
        return None

    # -- answers ----------------------------------------------------------------------------------

    def _stream(self, request: RecordedRequest, reply: StreamReply) -> None:
        self._wait(reply.head_delay)
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in {"request-id": ev.next_id("req"), **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.chunks is not None:
            items: list[Any] = list(reply.chunks)
        else:
            items = list(reply.events if reply.events is not None else _default_events(request))
        for position, item in enumerate(items):
            if isinstance(item, Pause):
                self._wait(item.seconds)
                continue
            if position and reply.event_delay:
                self._wait(reply.event_delay)
            self._write_chunk(item if isinstance(item, bytes) else ev.sse_frame(item))
            request.events_sent += 1
        if reply.die:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(b"0\r\n\r\n")

    def _hang(self, hang: Hang) -> None:
        while not hang.release.is_set() and not self.fake.stopping.is_set():
            self._wait(0.05)
        self.close_connection = True

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers or {})

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in {"request-id": ev.next_id("req"), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self._write(payload)

    # -- I/O --------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _write_chunk(self, data: bytes) -> None:
        self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise _Disconnected from exc

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, noticing at once if the peer closes the connection meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            if self.fake.stopping.is_set():
                raise _Disconnected
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
            if readable and self._peer_closed():
                raise _Disconnected

    def _peer_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


def _model(request: RecordedRequest) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    return str(body.get("model") or "databricks-claude-sonnet-4-5")


DEFAULT_TEXT = "Hello from the fake upstream."


def _default_message(request: RecordedRequest) -> dict[str, Any]:
    return ev.message([ev.text_block(DEFAULT_TEXT)], model=_model(request))


def _default_events(request: RecordedRequest) -> list[dict[str, Any]]:
    return ev.text_events(["Hello from ", "the fake upstream."], model=_model(request))
