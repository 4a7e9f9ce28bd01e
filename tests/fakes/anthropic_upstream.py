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

import time
from dataclasses import dataclass
from typing import Any

from tests.fakes import anthropic_events as ev
from tests.fakes import behaviours as base
from tests.fakes.behaviours import Hang, JsonReply, Pause
from tests.fakes.databricks_rules import strict_violation
from tests.fakes.http_base import FakeHandler, FakeServer


@dataclass
class StreamReply(base.StreamedReply):
    """An SSE answer.

    ``events`` (dicts and :class:`Pause` markers; None: a short text stream) or ``chunks`` (raw
    bytes, one HTTP chunk each, to split frames anywhere). ``head_delay`` waits before the
    status line, ``event_delay`` between items, and ``die`` closes the socket after the last
    item without ending the chunked body.
    """

    events: list[dict[str, Any] | Pause] | None = None
    chunks: list[bytes] | None = None
    event_delay: float = 0.0


@dataclass
class ErrorReply(base.ErrorReply):
    """An error status with Anthropic's error body (or ``raw_body`` as is)."""

    error_type: str = "api_error"
    message: str = "fake upstream error"


Behaviour = JsonReply | StreamReply | ErrorReply | Hang


@dataclass
class RecordedRequest(base.RecordedRequest):
    """One request the fake received, and what became of its answer; ``events_sent`` counts the
    items of its stream that went out."""

    events_sent: int = 0

    @property
    def stream(self) -> bool:
        """Whether the request asked for a stream."""
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class FakeAnthropicUpstream(FakeServer[RecordedRequest, Behaviour]):
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, *, strict: bool = False, token: str | None = None) -> None:
        self.strict = strict
        self.token = token
        super().__init__(_Handler, name="fake-anthropic")

    @property
    def host(self) -> str:
        """The ``Host`` header a client of this server must send."""
        return f"127.0.0.1:{self.port}"

    def default_behaviour(self, request: RecordedRequest) -> Behaviour:
        """A short valid text answer, streamed when the request asks for a stream."""
        return StreamReply() if request.stream else JsonReply()

    def message_requests(self) -> list[RecordedRequest]:
        """The ``/v1/messages`` requests received so far."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/v1/messages")]


class _Handler(FakeHandler):
    def do_GET(self) -> None:
        self._send_json(404, ev.error_body("not_found_error", f"Not found: GET {self.path}"))

    def _record(self, method: str, body: Any) -> RecordedRequest:
        request = RecordedRequest(method, self.path, self._header_dict(), body, time.monotonic())
        self.fake.record(request)
        return request

    def _stamp_headers(self) -> dict[str, str]:
        return {"request-id": ev.next_id("req")}

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
        self._play(request, self.fake.next_behaviour(request))
        request.completed = True

    def _error_payload(self, request: RecordedRequest, reply: ErrorReply) -> dict[str, Any]:
        return ev.error_body(reply.error_type, reply.message)

    def _json_payload(self, request: RecordedRequest, reply: JsonReply) -> dict[str, Any]:
        return reply.body or _default_message(request)

    def _reject(self, request: RecordedRequest) -> tuple[int, str, str] | None:
        fake = self.fake
        if fake.token is not None and request.headers.get("authorization") != f"Bearer {fake.token}":
            return 401, "authentication_error", "Invalid access token."
        if fake.strict:
            text = strict_violation(request.headers, request.body, fake.host)
            if text is not None:
                return 400, "invalid_request_error", text
        return None

    def _stream(self, request: RecordedRequest, reply: StreamReply) -> None:
        self._wait(reply.head_delay)
        self._start_chunked(reply.status, "text/event-stream; charset=utf-8",
                            {"Cache-Control": "no-cache", **self._stamp_headers(), **reply.headers})
        if reply.chunks is not None:
            items: list[Any] = list(reply.chunks)
        else:
            items = list(reply.events if reply.events is not None else _default_events(request))
        for item in self._paced(items, reply.event_delay):
            self._write_chunk(item if isinstance(item, bytes) else ev.sse_frame(item))
            request.events_sent += 1
        self._end_chunked(die=reply.die)


def _model(request: RecordedRequest) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    return str(body.get("model") or "databricks-claude-sonnet-4-5")


DEFAULT_TEXT = "Hello from the fake upstream."


def _default_message(request: RecordedRequest) -> dict[str, Any]:
    return ev.message([ev.text_block(DEFAULT_TEXT)], model=_model(request))


def _default_events(request: RecordedRequest) -> list[dict[str, Any]]:
    return ev.text_events(["Hello from ", "the fake upstream."], model=_model(request))
