"""The HTTP plumbing the fake upstreams share (:mod:`tests.fakes.anthropic_upstream`,
:mod:`tests.fakes.openai_upstream`, :mod:`tests.fakes.ollama_upstream`).

- :class:`FakeServer`: a fake's life cycle (a context manager serving on a background thread on
  127.0.0.1), its queue of scripted behaviours, ``responder`` and recorded requests.
- :class:`TrackingHTTPServer`: a ``ThreadingHTTPServer`` that knows its open connections, so
  stopping the fake cuts streams and keep-alive connections at once.
- :class:`FakeHandler`: the request handler base — real HTTP/1.1 with keep-alive, quiet logging,
  request bodies by ``Content-Length`` or chunked, JSON answers, chunked streams flushed one
  chunk at a time, and waits that notice the peer going away (:class:`Disconnected`).

What the fakes record and the behaviours they share are in :mod:`tests.fakes.behaviours`.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

from tests.fakes.behaviours import ErrorReply, Hang, JsonReply, Pause, RecordedRequest

HOST = "127.0.0.1"


class Disconnected(Exception):
    """The peer closed the connection (or the fake stopped) while we were answering."""


RequestT = TypeVar("RequestT", bound=RecordedRequest)
BehaviourT = TypeVar("BehaviourT")


class TrackingHTTPServer(ThreadingHTTPServer):
    """Serves each connection on a daemon thread and keeps the open ones (with their number)."""

    daemon_threads = True
    block_on_close = False
    fake: Any

    def __init__(self, *args: Any) -> None:
        self.connections: dict[socket.socket, int] = {}
        self.connections_lock = threading.Lock()
        super().__init__(*args)

    def connection_opened(self, client_address: Any) -> int:
        """The number to give a new connection from ``client_address`` (0: not counted)."""
        return 0

    def process_request(self, request: Any, client_address: Any) -> None:
        number = self.connection_opened(client_address)
        with self.connections_lock:
            self.connections[request] = number
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.pop(request, None)
        super().shutdown_request(request)

    def connection_number(self, conn: socket.socket) -> int:
        """The number :meth:`connection_opened` gave ``conn`` (0 when unknown)."""
        with self.connections_lock:
            return self.connections.get(conn, 0)

    def close_connections(self) -> None:
        """Shut down every open connection (the handlers then see their peer gone)."""
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class FakeServer(ABC, Generic[RequestT, BehaviourT]):
    """A fake upstream; a context manager that starts and stops it.

    Subclasses give the handler class and thread name to ``__init__`` and say what a request gets
    when nothing is scripted (:meth:`default_behaviour`).
    """

    def __init__(self, handler: type[FakeHandler], *, name: str,
                 server_class: type[TrackingHTTPServer] = TrackingHTTPServer) -> None:
        self.requests: list[RequestT] = []
        self.responder: Callable[[RequestT], BehaviourT | None] | None = None
        self._queue: deque[BehaviourT] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self._server = server_class((HOST, 0), handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *behaviours: BehaviourT) -> None:
        """Queue behaviours for the next requests that take one, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    @abstractmethod
    def default_behaviour(self, request: RequestT) -> BehaviourT:
        """The answer when neither the script nor the responder gives one."""

    def next_behaviour(self, request: RequestT) -> BehaviourT:
        """What to do for ``request``: script, then responder, then the default answer."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return self.default_behaviour(request)

    def record(self, request: RequestT) -> None:
        """Keep ``request`` and wake anyone waiting for it."""
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RequestT]:
        """Block until ``count`` requests have arrived; fails the caller after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} upstream requests, got {len(self.requests)}")
                self._changed.wait(remaining)
            return list(self.requests)


class FakeHandler(BaseHTTPRequestHandler, ABC):
    """The request handler base. Subclasses record a request (:meth:`_record`) and answer it
    (:meth:`_answer`); ``do_POST`` here reads and parses the body and notes a disconnect."""

    protocol_version = "HTTP/1.1"
    server: TrackingHTTPServer
    json_content_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are the log."""

    @property
    def fake(self) -> Any:
        """The :class:`FakeServer` this handler serves."""
        return self.server.fake

    def do_POST(self) -> None:
        request = self._record("POST", self._json_body())
        try:
            self._answer(request)
        except Disconnected:
            request.disconnected_at = request.disconnected_at or time.monotonic()
            self.close_connection = True
        finally:
            request.done.set()

    @abstractmethod
    def _record(self, method: str, body: Any) -> Any:
        """Make the :class:`RecordedRequest` for this request and hand it to the fake."""

    @abstractmethod
    def _answer(self, request: Any) -> None:
        """Each subclass answers this its own way."""

    def _header_dict(self) -> dict[str, str]:
        """The request's headers, names lower-cased."""
        return {k.lower(): v for k, v in self.headers.items()}

    def _stamp_headers(self) -> dict[str, str]:
        """Headers every answer carries (a fresh request id, say)."""
        return {}

    # -- answers ----------------------------------------------------------------------------------

    def _play(self, request: Any, behaviour: Any) -> None:
        """Answer ``request`` as ``behaviour`` says: :class:`Hang`, :class:`ErrorReply` (body from
        :meth:`_error_payload`), :class:`JsonReply` (body from :meth:`_json_payload`), or anything
        else through :meth:`_stream`."""
        request.behaviour = type(behaviour).__name__
        if isinstance(behaviour, Hang):
            self._hang(behaviour)
        elif isinstance(behaviour, ErrorReply):
            self._wait(behaviour.delay)
            payload = behaviour.raw_body or json.dumps(self._error_payload(request, behaviour)).encode()
            self._send_bytes(behaviour.status, payload, behaviour.headers)
        elif isinstance(behaviour, JsonReply):
            self._wait(behaviour.delay)
            self._send_json(behaviour.status, self._json_payload(request, behaviour), behaviour.headers,
                            cut_after=behaviour.cut_after)
        else:
            self._stream(request, behaviour)

    @abstractmethod
    def _error_payload(self, request: Any, reply: Any) -> Any:
        """The error body for an :class:`ErrorReply` without ``raw_body``."""

    def _json_payload(self, request: Any, reply: JsonReply) -> Any:
        """The body for a :class:`JsonReply` (its own, or the fake's default answer)."""
        raise TypeError(f"{type(self.fake).__name__} does not answer with a JsonReply")

    @abstractmethod
    def _stream(self, request: Any, reply: Any) -> None:
        """Each subclass answers this its own way."""

    def _hang(self, hang: Hang) -> None:
        while not hang.release.is_set() and not self.fake.stopping.is_set():
            self._wait(0.05)
        self.close_connection = True

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None, *,
                   cut_after: int | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers or {}, cut_after=cut_after)

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str], *,
                    cut_after: int | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": self.json_content_type, **self._stamp_headers(), **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut_after is None:
            self._write(payload)
            return
        self._write(payload[:cut_after])
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _start_chunked(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        """Send the status line and headers of a chunked answer."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _paced(self, items: Iterable[Any], delay: float) -> Iterator[Any]:
        """The items to write, in order: markers (:meth:`_marker`) are acted on and skipped, and
        ``delay`` seconds pass before every item but the first."""
        for position, item in enumerate(items):
            if self._marker(item):
                continue
            if position and delay:
                self._wait(delay)
            yield item

    def _marker(self, item: Any) -> bool:
        """Act on ``item`` if it is a marker (:class:`Pause`); whether it was one."""
        if isinstance(item, Pause):
            self._wait(item.seconds)
            return True
        return False

    def _end_chunked(self, *, die: bool, last: bytes = b"") -> None:
        """End a chunked answer (with ``last`` as its last chunk), or with ``die`` drop the socket
        without ending it."""
        if die:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if last:
            self._write_chunk(last)
        self._write(b"0\r\n\r\n")

    # -- I/O --------------------------------------------------------------------------------------

    def _json_body(self) -> Any:
        """The request body parsed as JSON (None when empty, the text when not JSON)."""
        raw = self._read_body()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

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
            raise Disconnected from exc

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, noticing at once if the peer closes the connection meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            if self.fake.stopping.is_set():
                raise Disconnected
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
            if readable and self._peer_closed():
                raise Disconnected

    def _peer_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
