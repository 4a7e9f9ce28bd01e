"""A scriptable fake OpenAI chat-completions upstream on 127.0.0.1 (what Lynkr translates to).

Start it with ``with FakeOpenAIUpstream() as fake:``; ``fake.base_url`` (``…/v1``) is what
``OPENAI_COMPATIBLE_ENDPOINT`` takes. It serves ``POST …/chat/completions`` and ``GET …/models``.
Each request is recorded (:class:`RecordedRequest`) and answered by the next scripted behaviour
(:meth:`FakeOpenAIUpstream.script`), then by ``fake.responder(request)`` when set, then by a short
text answer — a ``chat.completion``, or a chunk stream ending in ``data: [DONE]`` when the request
says ``"stream": true`` (with a usage chunk when it asks for ``stream_options.include_usage``).

Behaviours: :class:`JsonReply`, :class:`StreamReply` (chunk dicts, raw ``bytes`` and
:class:`Pause` markers; ``die`` drops the socket mid-stream, ``done=False`` leaves out
``[DONE]``), :class:`ErrorReply` (OpenAI's error body) and :class:`Hang`. Builders for bodies
and chunks: :func:`completion`, :func:`text_chunks`, :func:`tool_call_chunks`, :func:`chunk`.

``strict=True`` answers 400 with OpenAI's error body to whatever the real API rejects (see
:mod:`tests.fakes.openai_rules`); ``token=`` answers 401 unless ``Authorization: Bearer <token>``.
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.openai_rules import Strictness, strict_violation

DEFAULT_TEXT = "Hello from the fake upstream."
DEFAULT_USAGE = (12, 6)  # prompt_tokens, completion_tokens
CREATED = 1_760_000_000
_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A fresh id such as ``chatcmpl-fake000001``."""
    return f"{prefix}fake{next(_ids):06d}"


# -- bodies and chunks --------------------------------------------------------------------------


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A complete tool call as in a ``chat.completion`` message."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id or next_id("call_"), "type": "function", "function": {"name": name, "arguments": args}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """OpenAI's usage object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


def completion(content: str | None = DEFAULT_TEXT, *, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str | None = None, model: str = "gpt-4o",
               prompt_tokens: int = DEFAULT_USAGE[0], completion_tokens: int = DEFAULT_USAGE[1]) -> dict[str, Any]:
    """A whole ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": next_id("chatcmpl-"), "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": usage(prompt_tokens, completion_tokens), "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chunk(delta: dict[str, Any] | None, *, finish_reason: str | None = None, model: str = "gpt-4o",
          chunk_id: str = "chatcmpl-fake", with_usage_field: bool = True) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` is the final usage chunk's empty ``choices``."""
    body: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                            "service_tier": "default", "system_fingerprint": "fp_fake", "choices": []}
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    if with_usage_field:
        body["usage"] = None  # as OpenAI sends it on every chunk when include_usage is set
    return body


def usage_chunk(prompt_tokens: int, completion_tokens: int, *, model: str = "gpt-4o",
                chunk_id: str = "chatcmpl-fake") -> dict[str, Any]:
    """The last chunk of a stream with ``include_usage``: no choices, the usage."""
    return {**chunk(None, model=model, chunk_id=chunk_id), "usage": usage(prompt_tokens, completion_tokens)}


def text_chunks(pieces: Iterable[str], *, model: str = "gpt-4o", finish_reason: str = "stop",
                prompt_tokens: int | None = DEFAULT_USAGE[0], completion_tokens: int = DEFAULT_USAGE[1]
                ) -> list[dict[str, Any]]:
    """A whole stream answering with text; ``prompt_tokens=None`` leaves out the usage chunk."""
    cid = next_id("chatcmpl-")
    out = [chunk({"role": "assistant", "content": "", "refusal": None}, model=model, chunk_id=cid)]
    out += [chunk({"content": piece}, model=model, chunk_id=cid) for piece in pieces]
    out.append(chunk({}, finish_reason=finish_reason, model=model, chunk_id=cid))
    if prompt_tokens is not None:
        out.append(usage_chunk(prompt_tokens, completion_tokens, model=model, chunk_id=cid))
    return out


def tool_call_chunks(calls: Sequence[tuple[str, str, dict[str, Any]]], *, preface: str | None = None,
                     model: str = "gpt-4o", prompt_tokens: int | None = 20, completion_tokens: int = 15
                     ) -> list[dict[str, Any]]:
    """A stream of ``(call_id, name, arguments)`` calls, as OpenAI streams them.

    The first fragment of a call carries index, id, type, name and empty arguments; the
    arguments follow in three pieces that split the JSON anywhere.
    """
    cid = next_id("chatcmpl-")
    out = [chunk({"role": "assistant", "content": preface if preface else None, "refusal": None},
                 model=model, chunk_id=cid)]
    for index, (call_id, name, arguments) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}, model=model, chunk_id=cid))
        text = json.dumps(arguments)
        cuts = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
        for start, end in itertools.pairwise(cuts):
            fragment = {"index": index, "function": {"arguments": text[start:end]}}
            out.append(chunk({"tool_calls": [fragment]}, model=model, chunk_id=cid))
    out.append(chunk({}, finish_reason="tool_calls", model=model, chunk_id=cid))
    if prompt_tokens is not None:
        out.append(usage_chunk(prompt_tokens, completion_tokens, model=model, chunk_id=cid))
    return out


def error_body(message: str, error_type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def sse_data(item: dict[str, Any] | str) -> bytes:
    """One SSE frame as OpenAI sends it: a ``data:`` line and a blank line."""
    payload = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


# -- behaviours ---------------------------------------------------------------------------------


@dataclass
class JsonReply:
    """A JSON answer; ``body=None`` is a short text completion echoing the request's model."""

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Pause:
    """A marker inside :attr:`StreamReply.chunks`: wait this long before the next item."""

    seconds: float


@dataclass
class StreamReply:
    """An SSE answer: ``chunks`` are dicts (sent as ``data:`` frames), raw ``bytes`` (sent as they
    are, one HTTP chunk each) and :class:`Pause` markers; None is a short text stream.

    ``done`` appends ``data: [DONE]``; ``die`` closes the socket after the last item without
    ``[DONE]`` or the end of the chunked body; ``head_delay`` waits before the status line and
    ``chunk_delay`` between items.
    """

    chunks: list[dict[str, Any] | bytes | Pause] | None = None
    done: bool = True
    die: bool = False
    head_delay: float = 0.0
    chunk_delay: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ErrorReply:
    """An error status with OpenAI's error body (or ``raw_body`` as is)."""

    status: int
    message: str = "fake upstream error"
    error_type: str = "server_error"
    code: str | None = None
    param: str | None = None
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
    chunks_sent: int = 0
    completed: bool = False
    disconnected_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def stream(self) -> bool:
        """Whether the request asked for a stream."""
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's chat messages (empty when there are none)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def include_usage(self) -> bool:
        """Whether the stream should end with a usage chunk."""
        options = self.body.get("stream_options") if isinstance(self.body, dict) else None
        return isinstance(options, dict) and options.get("include_usage") is True


class _Disconnected(Exception):
    """The peer closed the connection while we were answering."""


class FakeOpenAIUpstream:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, strict: bool = False, token: str | None = None, rules: Strictness | None = None) -> None:
        self.strict = strict
        self.token = token
        self.rules = rules or Strictness()
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
                                        name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base, ``http://127.0.0.1:<port>/v1``."""
        return self.url + "/v1"

    def start(self) -> FakeOpenAIUpstream:
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

    def __enter__(self) -> FakeOpenAIUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next accepted chat-completions requests, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget recorded requests, scripted behaviours and the responder (to reuse one fake across tests)."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self.responder = None

    def next_behaviour(self, request: RecordedRequest) -> Behaviour:
        """What to do for ``request``: script, then responder, then the default answer."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            chosen = self.responder(request)
            if chosen is not None:
                return chosen
        return default_reply(request)

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

    def chat_requests(self) -> list[RecordedRequest]:
        """The ``/chat/completions`` requests received so far."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/chat/completions")]

    def rejections(self) -> list[str]:
        """Why each rejected request was rejected (401s and strict 400s)."""
        return [r.rejected for r in self.requests if r.rejected]


def default_reply(request: RecordedRequest) -> Behaviour:
    """A short text answer in the form the request asked for, echoing its model."""
    return StreamReply() if request.stream else JsonReply()


def default_chunks(request: RecordedRequest) -> list[dict[str, Any]]:
    """The default stream: :data:`DEFAULT_TEXT` in two pieces, usage when the request asks for it."""
    prompt_tokens = DEFAULT_USAGE[0] if request.include_usage else None
    return text_chunks(["Hello from ", "the fake upstream."], model=_model(request), prompt_tokens=prompt_tokens,
                       completion_tokens=DEFAULT_USAGE[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAIUpstream

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
    def fake(self) -> FakeOpenAIUpstream:
        return self.server.fake

    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o", "object": "model", "created": CREATED, "owned_by": "fake"}]})
            return
        self._send_json(404, error_body(f"Invalid URL (GET {self.path})", code="unknown_url"))

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
        if not self.path.split("?")[0].endswith("/chat/completions"):
            request.behaviour = "not_found"
            self._send_json(404, error_body(f"Invalid URL (POST {self.path})", code="unknown_url"))
            return
        problem = self._reject(request)
        if problem is not None:
            status, body = problem
            request.behaviour, request.rejected = "rejected", body["error"]["message"]
            self._send_json(status, body)
            return
        behaviour = self.fake.next_behaviour(request)
        request.behaviour = type(behaviour).__name__
        if isinstance(behaviour, Hang):
            self._hang(behaviour)
        elif isinstance(behaviour, ErrorReply):
            self._wait(behaviour.delay)
            payload = behaviour.raw_body or json.dumps(error_body(
                behaviour.message, behaviour.error_type, behaviour.param, behaviour.code)).encode()
            self._send_bytes(behaviour.status, payload, behaviour.headers)
        elif isinstance(behaviour, JsonReply):
            self._wait(behaviour.delay)
            default = behaviour.body is None
            self._send_json(behaviour.status, completion(model=_model(request)) if default else behaviour.body,
                            behaviour.headers)
        else:
            self._stream(request, behaviour)
        request.completed = True

    def _reject(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        fake = self.fake
        if fake.token is not None and request.headers.get("authorization") != f"Bearer {fake.token}":
            return 401, error_body("Incorrect API key provided.", code="invalid_api_key")
        if fake.strict:
            problem = strict_violation(request.body, fake.rules)
            if problem is not None:
                message, param, code = problem
                return 400, error_body(message, "invalid_request_error", param, code)
        return None

    # -- answers ----------------------------------------------------------------------------------

    def _stream(self, request: RecordedRequest, reply: StreamReply) -> None:
        self._wait(reply.head_delay)
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in {"x-request-id": next_id("req_"), **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        items = reply.chunks if reply.chunks is not None else default_chunks(request)
        for position, item in enumerate(items):
            if isinstance(item, Pause):
                self._wait(item.seconds)
                continue
            if position and reply.chunk_delay:
                self._wait(reply.chunk_delay)
            self._write_chunk(item if isinstance(item, bytes) else sse_data(item))
            request.chunks_sent += 1
        if reply.die:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.done:
            self._write_chunk(sse_data("[DONE]"))
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
        for name, value in {"x-request-id": next_id("req_"), **headers}.items():
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
    model = request.body.get("model") if isinstance(request.body, dict) else None
    return model if isinstance(model, str) and model else "gpt-4o"
