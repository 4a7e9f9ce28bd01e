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
and chunks (:mod:`tests.fakes.openai_chunks`, importable from here too): :func:`completion`,
:func:`text_chunks`, :func:`tool_call_chunks`, :func:`chunk`.

``strict=True`` answers 400 with OpenAI's error body to whatever the real API rejects (see
:mod:`tests.fakes.openai_rules`); ``token=`` answers 401 unless ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tests.fakes import behaviours as base
from tests.fakes.behaviours import Hang, JsonReply, Pause
from tests.fakes.http_base import FakeHandler, FakeServer
from tests.fakes.openai_chunks import (
    CREATED,
    DEFAULT_TEXT,
    DEFAULT_USAGE,
    chunk,
    completion,
    error_body,
    next_id,
    sse_data,
    text_chunks,
    tool_call,
    tool_call_chunks,
    usage,
    usage_chunk,
)
from tests.fakes.openai_rules import Strictness, strict_violation

__all__ = [
    "CREATED", "DEFAULT_TEXT", "DEFAULT_USAGE", "Behaviour", "ErrorReply", "FakeOpenAIUpstream", "Hang", "JsonReply",
    "Pause", "RecordedRequest", "StreamReply", "chunk", "completion", "default_chunks", "default_reply", "error_body",
    "next_id", "sse_data", "text_chunks", "tool_call", "tool_call_chunks", "usage", "usage_chunk",
]


@dataclass
class StreamReply(base.StreamedReply):
    """An SSE answer: ``chunks`` are dicts (sent as ``data:`` frames), raw ``bytes`` (sent as they
    are, one HTTP chunk each) and :class:`Pause` markers; None is a short text stream.

    ``done`` appends ``data: [DONE]``; ``die`` closes the socket after the last item without
    ``[DONE]`` or the end of the chunked body; ``head_delay`` waits before the status line and
    ``chunk_delay`` between items.
    """

    chunks: list[dict[str, Any] | bytes | Pause] | None = None
    done: bool = True
    chunk_delay: float = 0.0


@dataclass
class ErrorReply(base.ErrorReply):
    """An error status with OpenAI's error body (or ``raw_body`` as is)."""

    message: str = "fake upstream error"
    error_type: str = "server_error"
    code: str | None = None
    param: str | None = None


Behaviour = JsonReply | StreamReply | ErrorReply | Hang


@dataclass
class RecordedRequest(base.RecordedRequest):
    """One request the fake received, and what became of its answer; ``chunks_sent`` counts the
    items of its stream that went out (not ``[DONE]``)."""

    chunks_sent: int = 0

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


class FakeOpenAIUpstream(FakeServer[RecordedRequest, Behaviour]):
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, strict: bool = False, token: str | None = None, rules: Strictness | None = None) -> None:
        self.strict = strict
        self.token = token
        self.rules = rules or Strictness()
        super().__init__(_Handler, name="fake-openai")

    @property
    def base_url(self) -> str:
        """The API base, ``http://127.0.0.1:<port>/v1``."""
        return self.url + "/v1"

    def reset(self) -> None:
        """Forget recorded requests, scripted behaviours and the responder (to reuse one fake across tests)."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self.responder = None

    def default_behaviour(self, request: RecordedRequest) -> Behaviour:
        return default_reply(request)

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


class _Handler(FakeHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o", "object": "model", "created": CREATED, "owned_by": "fake"}]})
            return
        self._send_json(404, error_body(f"Invalid URL (GET {self.path})", code="unknown_url"))

    def _record(self, method: str, body: Any) -> RecordedRequest:
        request = RecordedRequest(method, self.path, self._header_dict(), body, time.monotonic())
        self.fake.record(request)
        return request

    def _stamp_headers(self) -> dict[str, str]:
        return {"x-request-id": next_id("req_")}

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
        self._play(request, self.fake.next_behaviour(request))
        request.completed = True

    def _error_payload(self, request: RecordedRequest, reply: ErrorReply) -> dict[str, Any]:
        return error_body(reply.message, reply.error_type, reply.param, reply.code)

    def _json_payload(self, request: RecordedRequest, reply: JsonReply) -> dict[str, Any]:
        return completion(model=_model(request)) if reply.body is None else reply.body

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

    def _stream(self, request: RecordedRequest, reply: StreamReply) -> None:
        self._wait(reply.head_delay)
        self._start_chunked(reply.status, "text/event-stream; charset=utf-8",
                            {"Cache-Control": "no-cache", **self._stamp_headers(), **reply.headers})
        items = reply.chunks if reply.chunks is not None else default_chunks(request)
        for item in self._paced(items, reply.chunk_delay):
            self._write_chunk(item if isinstance(item, bytes) else sse_data(item))
            request.chunks_sent += 1
        self._end_chunked(die=reply.die, last=sse_data("[DONE]") if reply.done else b"")


def _model(request: RecordedRequest) -> str:
    model = request.body.get("model") if isinstance(request.body, dict) else None
    return model if isinstance(model, str) and model else "gpt-4o"
