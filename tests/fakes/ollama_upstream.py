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
  the key out, as servers before 0.6 did; ``capabilities_by_model`` overrides it per model;
  ``show_status`` answers an error instead, and ``show_delay`` seconds pass before the answer).
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes import behaviours as base
from tests.fakes.behaviours import Hang, Pause
from tests.fakes.http_base import Disconnected, FakeHandler, FakeServer, TrackingHTTPServer

CHAT_PATH = "/api/chat"
OPENAI_CHAT_PATH = "/v1/chat/completions"
SHOW_PATH = "/api/show"
DEFAULT_MODEL = "qwen2.5-coder:7b"
DEFAULT_PIECES = ("Hello from ", "the fake Ollama.")
DEFAULT_TEXT = "".join(DEFAULT_PIECES)
DEFAULT_CAPABILITIES = ("completion", "tools")


@dataclass(frozen=True)
class Gate:
    """A marker inside :attr:`ChatReply.pieces`: wait until ``release`` is set (or the fake
    stops, or the peer goes away) before the next line. ``reached`` is set on arrival."""

    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


@dataclass
class ChatReply(base.StreamedReply):
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
    line_delay: float = 0.0


@dataclass
class ErrorReply(base.ErrorReply):
    """An error status with Ollama's error body, ``{"error": message}`` (or ``raw_body``)."""

    message: str = "fake Ollama error"


Behaviour = ChatReply | ErrorReply | Hang


@dataclass
class RecordedRequest(base.RecordedRequest):
    """One request the fake received, and what became of its answer; ``connection`` is the number
    of the TCP connection it came on (from 1) and ``peer`` that connection's client address."""

    connection: int = field(kw_only=True)
    peer: tuple[str, int] = field(kw_only=True)
    lines_sent: int = 0

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


class FakeOllama(FakeServer[RecordedRequest, Behaviour]):
    """The fake server; a context manager that starts and stops it (stopping also releases gates)."""

    def __init__(self, *, capabilities: list[str] | tuple[str, ...] | None = DEFAULT_CAPABILITIES,
                 models: list[str] | tuple[str, ...] = (DEFAULT_MODEL,)) -> None:
        self.capabilities = None if capabilities is None else list(capabilities)
        self.capabilities_by_model: dict[str, list[str]] = {}  # per-model answers of /api/show
        self.show_status = 200
        self.show_delay = 0.0
        self.models = list(models)
        self.peers: list[tuple[str, int]] = []
        super().__init__(_Handler, name="fake-ollama", server_class=_Server)

    @property
    def connections_accepted(self) -> int:
        """TCP connections the server has accepted so far."""
        with self._lock:
            return len(self.peers)

    def default_behaviour(self, request: RecordedRequest) -> Behaviour:
        """A short text answer."""
        return ChatReply()

    # -- what was received ------------------------------------------------------------------------

    def accepted(self, peer: tuple[str, int]) -> int:
        """Count a new connection from ``peer``; returns its number (from 1)."""
        with self._changed:
            self.peers.append(peer)
            self._changed.notify_all()
            return len(self.peers)

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

    def wait_for_requests(self, count: int, route: str = CHAT_PATH,  # type: ignore[override]
                          timeout: float = 10.0) -> list[RecordedRequest]:
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


class _Server(TrackingHTTPServer):
    """Numbers every connection it accepts (the fake counts them)."""

    def connection_opened(self, client_address: Any) -> int:
        return self.fake.accepted(tuple(client_address[:2]))


class _Handler(FakeHandler):
    json_content_type = "application/json; charset=utf-8"

    def do_GET(self) -> None:
        request = self._record("GET", None)
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

    def _record(self, method: str, body: Any) -> RecordedRequest:
        request = RecordedRequest(method, self.path, self._header_dict(), body, time.monotonic(),
                                  connection=self.server.connection_number(self.connection),
                                  peer=tuple(self.client_address[:2]))
        self.fake.record(request)
        return request

    def _answer(self, request: RecordedRequest) -> None:
        if request.route == SHOW_PATH:
            self._show(request)
        elif request.route in (CHAT_PATH, OPENAI_CHAT_PATH):
            self._play(request, self.fake.next_behaviour(request))
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
        capabilities = fake.capabilities_by_model.get(request.model, fake.capabilities)
        if capabilities is not None:
            body["capabilities"] = list(capabilities)
        self._send_json(200, body)

    # -- answers ----------------------------------------------------------------------------------

    def _error_payload(self, request: RecordedRequest, reply: ErrorReply) -> dict[str, Any]:
        return _error_body(reply.message, request.route == OPENAI_CHAT_PATH)

    def _stream(self, request: RecordedRequest, reply: ChatReply) -> None:
        """A :class:`ChatReply`: streamed, or one JSON object when the request says ``"stream": false``."""
        openai = request.route == OPENAI_CHAT_PATH
        self._wait(reply.head_delay)
        if not request.stream:
            message = _openai_message(request, reply) if openai else _ollama_message(request, reply)
            self._send_json(reply.status, message, reply.headers)
            return
        self._start_chunked(reply.status, "text/event-stream" if openai else "application/x-ndjson", reply.headers)
        lines = _openai_lines(request, reply) if openai else _ollama_lines(request, reply)
        for item in self._paced(lines, reply.line_delay):
            self._write_chunk(item)
            request.lines_sent += 1
        self._end_chunked(die=reply.die)

    def _marker(self, item: Any) -> bool:
        if isinstance(item, Gate):
            item.reached.set()
            while not item.release.is_set():
                self._wait(0.05)
            return True
        return super()._marker(item)

    def _hang(self, hang: Hang) -> None:
        with contextlib.suppress(Disconnected):
            while not hang.release.is_set():
                self._wait(0.05)
        self.close_connection = True


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
