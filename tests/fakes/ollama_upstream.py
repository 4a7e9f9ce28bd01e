"""A scriptable fake Ollama server on 127.0.0.1 (what Lynkr's Ollama provider talks to).

Start it with ``with FakeOllama() as fake:``; ``fake.url`` is its base URL (``OLLAMA_ENDPOINT``).
It serves what Lynkr uses of Ollama's API:

- ``POST /api/chat`` — answered by the next behaviour of the script (:meth:`FakeOllama.script`),
  then by ``fake.responder(request)`` when set, then by a short text answer. A request with
  ``"stream": false`` gets one JSON object; any other gets NDJSON (``application/x-ndjson``,
  chunked, one flushed chunk per line): ``{"model", "created_at", "message": {"role":
  "assistant", "content": …}, "done": false}`` lines, then a ``done: true`` line with
  ``done_reason``, ``prompt_eval_count`` and ``eval_count`` — Ollama streams unless told not to.
- ``POST /v1/chat/completions`` — Ollama's OpenAI-compatible endpoint, scripted from the same
  queue and answered as ``chat.completion`` JSON or SSE chunks ending in ``data: [DONE]``, so
  the fake can also stand in for an OpenAI-format provider (OpenRouter, OpenAI-compatible).
- ``POST /api/show`` — ``{"capabilities": fake.capabilities, …}`` (``capabilities=None`` leaves
  the key out, as servers before 0.6 did; ``show_status`` answers an error instead, and
  ``show_delay`` seconds pass before the answer).
- ``GET /api/tags`` (``fake.models``) and ``GET /api/version``.

Behaviours: :class:`ChatReply` (text pieces with :class:`Pause` / :class:`Gate` markers, tool
calls, raw lines, delays, or ``die`` to drop the socket mid-stream without the ``done`` line),
:class:`ErrorReply` (``{"error": "…"}`` with any status: 500, 429, 529…) and :class:`Hang`.

Every request is recorded (:class:`RecordedRequest`: path, headers, parsed body, which TCP
connection it came on, and for streams how far the answer got), and every TCP connection the
server accepts is counted (:attr:`FakeOllama.connections_accepted`), so a test can prove that
no request — and no connection — reached Ollama.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/api/chat"
OPENAI_CHAT_PATH = "/v1/chat/completions"
SHOW_PATH = "/api/show"
DEFAULT_MODEL = "qwen2.5-coder:7b"
DEFAULT_PIECES = ("Hello from ", "the fake Ollama.")
DEFAULT_TEXT = "".join(DEFAULT_PIECES)
DEFAULT_CAPABILITIES = ("completion", "tools")


@dataclass(frozen=True)
class Pause:
    """A marker inside :attr:`ChatReply.pieces`: wait this long before the next line."""

    seconds: float


@dataclass(frozen=True)
class Gate:
    """A marker inside :attr:`ChatReply.pieces`: wait until ``release`` is set (or the fake
    stops, or the peer goes away) before the next line. ``reached`` is set on arrival."""

    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


@dataclass
class ChatReply:
    """A chat answer, streamed or not as the request asked.

    ``pieces`` are content strings, one stream line each, with :class:`Pause` / :class:`Gate`
    markers between them (None: a short greeting); ``lines`` replaces them with raw JSON
    objects sent as they are (an ``{"error": …}`` line, say). ``tool_calls`` go in the last
    content line as Ollama sends them: ``{"function": {"name": …, "arguments": {…}}}``.
    ``head_delay`` waits before the status line, ``line_delay`` between lines. ``die`` drops
    the socket after the pieces: no ``done`` line and no end of the chunked body.
    """

    pieces: list[str | Pause | Gate] | None = None
    lines: list[dict[str, Any] | Pause | Gate] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    done_reason: str = "stop"
    prompt_eval_count: int = 12
    eval_count: int = 6
    head_delay: float = 0.0
    line_delay: float = 0.0
    die: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ErrorReply:
    """An error status with Ollama's error body, ``{"error": message}`` (or ``raw_body``)."""

    status: int
    message: str = "fake Ollama error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None


@dataclass
class Hang:
    """Never answers; closes the connection once ``release`` is set (or the fake stops)."""

    release: threading.Event = field(default_factory=threading.Event)


Behaviour = ChatReply | ErrorReply | Hang


@dataclass
class RecordedRequest:
    """One request the fake received, and what became of its answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    connection: int
    peer: tuple[str, int]
    behaviour: str = ""
    lines_sent: int = 0
    completed: bool = False
    disconnected_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]

    @property
    def stream(self) -> bool:
        """Whether the answer is streamed: ``/api/chat`` streams unless told not to."""
        body = self.body if isinstance(self.body, dict) else {}
        if self.route == OPENAI_CHAT_PATH:
            return bool(body.get("stream"))
        return body.get("stream", True) is not False

    @property
    def model(self) -> str:
        """The model the request named."""
        body = self.body if isinstance(self.body, dict) else {}
        return str(body.get("model") or DEFAULT_MODEL)


class _Disconnected(Exception):
    """The peer closed the connection while we were answering."""


class FakeOllama:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, capabilities: list[str] | tuple[str, ...] | None = DEFAULT_CAPABILITIES,
                 models: list[str] | tuple[str, ...] = (DEFAULT_MODEL,)) -> None:
        self.capabilities = None if capabilities is None else list(capabilities)
        self.show_status = 200
        self.show_delay = 0.0
        self.models = list(models)
        self.requests: list[RecordedRequest] = []
        self.peers: list[tuple[str, int]] = []
        self.responder: Callable[[RecordedRequest], Behaviour | None] | None = None
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-ollama", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>`` (what ``OLLAMA_ENDPOINT`` takes)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections the server has accepted so far."""
        with self._lock:
            return len(self.peers)

    def start(self) -> FakeOllama:
        """Serve on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hung requests and gates, stop streams and close the listening socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --------------------------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next chat requests (``/api/chat`` and ``/v1/chat/completions``)."""
        with self._lock:
            self._queue.extend(behaviours)

    def next_behaviour(self, request: RecordedRequest) -> Behaviour:
        """What to do for a chat ``request``: script, then responder, then the default answer."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return ChatReply()

    # -- what was received ------------------------------------------------------------------------

    def accepted(self, peer: tuple[str, int]) -> int:
        """Count a new connection from ``peer``; returns its number (from 1)."""
        with self._changed:
            self.peers.append(peer)
            self._changed.notify_all()
            return len(self.peers)

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` and wake anyone waiting for it."""
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """The requests received so far on ``route`` (e.g. ``/api/chat``)."""
        with self._lock:
            return [r for r in self.requests if r.route == route]

    def chat_requests(self) -> list[RecordedRequest]:
        """The ``/api/chat`` requests received so far."""
        return self.requests_to(CHAT_PATH)

    def show_requests(self) -> list[RecordedRequest]:
        """The ``/api/show`` requests received so far."""
        return self.requests_to(SHOW_PATH)

    def wait_for_requests(self, count: int, route: str = CHAT_PATH, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests have arrived on ``route``; fails the caller after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                seen = [r for r in self.requests if r.route == route]
                if len(seen) >= count:
                    return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} requests to {route}, got {len(seen)}")
                self._changed.wait(remaining)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOllama

    def __init__(self, *args: Any) -> None:
        self.connections: dict[socket.socket, int] = {}
        self.connections_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        number = self.fake.accepted(tuple(client_address[:2]))
        with self.connections_lock:
            self.connections[request] = number
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.pop(request, None)
        super().shutdown_request(request)

    def connection_number(self, conn: socket.socket) -> int:
        with self.connections_lock:
            return self.connections.get(conn, 0)

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
    def fake(self) -> FakeOllama:
        return self.server.fake

    def do_GET(self) -> None:
        request = self._recorded("GET", None)
        route = request.route
        if route == "/api/tags":
            self._send_json(200, {"models": [_model_entry(name) for name in self.fake.models]})
        elif route == "/api/version":
            self._send_json(200, {"version": "0.12.0"})
        elif route == "/":
            self._send_bytes(200, b"Ollama is running", {"Content-Type": "text/plain; charset=utf-8"})
        else:
            self._send_json(404, {"error": "404 page not found"})
        request.completed = True
        request.done.set()

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = self._recorded("POST", body)
        try:
            self._answer(request)
        except _Disconnected:
            request.disconnected_at = request.disconnected_at or time.monotonic()
            self.close_connection = True
        finally:
            request.done.set()

    def _recorded(self, method: str, body: Any) -> RecordedRequest:
        request = RecordedRequest(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                  time.monotonic(), self.server.connection_number(self.connection),
                                  tuple(self.client_address[:2]))
        self.fake.record(request)
        return request

    def _answer(self, request: RecordedRequest) -> None:
        if request.route == SHOW_PATH:
            self._show(request)
        elif request.route in (CHAT_PATH, OPENAI_CHAT_PATH):
            self._chat(request)
        else:
            request.behaviour = "not_found"
            self._send_json(404, {"error": "404 page not found"})
        request.completed = True

    def _show(self, request: RecordedRequest) -> None:
        fake = self.fake
        request.behaviour = "show"
        self._wait(fake.show_delay)
        if fake.show_status != 200:
            self._send_json(fake.show_status, {"error": f"model '{request.model}' not found"})
            return
        body: dict[str, Any] = {
            "modelfile": f"FROM {request.model}", "parameters": "", "template": "{{ .Prompt }}",
            "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B"},
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
        }
        if fake.capabilities is not None:
            body["capabilities"] = list(fake.capabilities)
        self._send_json(200, body)

    def _chat(self, request: RecordedRequest) -> None:
        behaviour = self.fake.next_behaviour(request)
        request.behaviour = type(behaviour).__name__
        openai = request.route == OPENAI_CHAT_PATH
        if isinstance(behaviour, Hang):
            self._hang(behaviour)
        elif isinstance(behaviour, ErrorReply):
            self._wait(behaviour.delay)
            payload = behaviour.raw_body or json.dumps(_error_body(behaviour.message, openai)).encode()
            self._send_bytes(behaviour.status, payload, behaviour.headers)
        elif request.stream:
            self._stream(request, behaviour, openai)
        else:
            self._wait(behaviour.head_delay)
            reply = _openai_message(request, behaviour) if openai else _ollama_message(request, behaviour)
            self._send_json(behaviour.status, reply, behaviour.headers)

    # -- answers ----------------------------------------------------------------------------------

    def _stream(self, request: RecordedRequest, reply: ChatReply, openai: bool) -> None:
        self._wait(reply.head_delay)
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream" if openai else "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        lines = _openai_lines(request, reply) if openai else _ollama_lines(request, reply)
        for position, item in enumerate(lines):
            if isinstance(item, Pause):
                self._wait(item.seconds)
                continue
            if isinstance(item, Gate):
                item.reached.set()
                self._gate(item)
                continue
            if position and reply.line_delay:
                self._wait(reply.line_delay)
            self._write_chunk(item)
            request.lines_sent += 1
        if reply.die:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(b"0\r\n\r\n")

    def _gate(self, gate: Gate) -> None:
        while not gate.release.is_set():
            self._wait(0.05)

    def _hang(self, hang: Hang) -> None:
        with contextlib.suppress(_Disconnected):
            while not hang.release.is_set():
                self._wait(0.05)
        self.close_connection = True

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers or {})

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
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


# -- bodies --------------------------------------------------------------------------------------

_ids = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _model_entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": _now(), "size": 4_683_087_332,
            "digest": "0" * 64, "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B"}}


def _error_body(message: str, openai: bool) -> dict[str, Any]:
    if openai:
        return {"error": {"message": message, "type": "api_error", "param": None, "code": None}}
    return {"error": message}


def _pieces(reply: ChatReply) -> list[str | Pause | Gate]:
    return list(DEFAULT_PIECES) if reply.pieces is None else list(reply.pieces)


def _text(reply: ChatReply) -> str:
    return "".join(p for p in _pieces(reply) if isinstance(p, str))


def _final(request: RecordedRequest, reply: ChatReply, message: dict[str, Any]) -> dict[str, Any]:
    return {"model": request.model, "created_at": _now(), "message": message, "done": True,
            "done_reason": reply.done_reason, "total_duration": 1_000_000, "load_duration": 100_000,
            "prompt_eval_count": reply.prompt_eval_count, "prompt_eval_duration": 200_000,
            "eval_count": reply.eval_count, "eval_duration": 700_000}


def _ollama_message(request: RecordedRequest, reply: ChatReply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _text(reply)}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return _final(request, reply, message)


def _ollama_lines(request: RecordedRequest, reply: ChatReply) -> Iterator[bytes | Pause | Gate]:
    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj).encode() + b"\n"

    if reply.lines is not None:
        for item in reply.lines:
            yield item if isinstance(item, (Pause, Gate)) else line(item)
        return
    for item in _pieces(reply):
        if isinstance(item, (Pause, Gate)):
            yield item
        else:
            yield line({"model": request.model, "created_at": _now(),
                        "message": {"role": "assistant", "content": item}, "done": False})
    if reply.die:
        return
    if reply.tool_calls:
        yield line({"model": request.model, "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
                    "done": False})
    yield line(_final(request, reply, {"role": "assistant", "content": ""}))


def _openai_usage(reply: ChatReply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_eval_count, "completion_tokens": reply.eval_count,
            "total_tokens": reply.prompt_eval_count + reply.eval_count}


def _openai_tool_calls(reply: ChatReply) -> list[dict[str, Any]]:
    return [{"id": f"call_fake_{n}", "index": n, "type": "function",
             "function": {"name": c["function"]["name"], "arguments": json.dumps(c["function"].get("arguments", {}))}}
            for n, c in enumerate(reply.tool_calls or [])]


def _openai_message(request: RecordedRequest, reply: ChatReply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _text(reply)}
    if reply.tool_calls:
        message["tool_calls"] = _openai_tool_calls(reply)
    finish = "tool_calls" if reply.tool_calls else reply.done_reason
    return {"id": f"chatcmpl-fake{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.model, "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": _openai_usage(reply)}


def _openai_lines(request: RecordedRequest, reply: ChatReply) -> Iterator[bytes | Pause | Gate]:
    ident, created = f"chatcmpl-fake{next(_ids)}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": request.model,
                "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    for item in _pieces(reply):
        yield item if isinstance(item, (Pause, Gate)) else chunk({"role": "assistant", "content": item})
    if reply.die:
        return
    if reply.tool_calls:
        yield chunk({"role": "assistant", "tool_calls": _openai_tool_calls(reply)})
    yield chunk({}, "tool_calls" if reply.tool_calls else reply.done_reason, usage=_openai_usage(reply))
    yield b"data: [DONE]\n\n"
