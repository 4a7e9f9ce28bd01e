"""WSGI middleware: request id, and the access-log line and request metrics written when a response ends.

Every response carries the id twice: ``X-Request-ID`` and ``request-id`` (the header the
Anthropic SDKs read into ``_request_id``; an upstream's own ``request-id`` is replaced by ours).
``environ["lynkr.started"]`` is when the request arrived (``time.perf_counter``).

It wraps the Flask app so it sees every response — errors and streams included — and times a
streamed response to its last byte, not to when the view returned. Views add ``provider`` and
``model`` for the log line through ``environ["lynkr.log"]``. An SSE response counts as an
active stream from its status line until it is closed.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.logging import REQUEST_ID, get_logger
from app.metrics.recorder import NULL_METRICS, UNMATCHED, MetricsRecorder, route_template

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_ID_HEADERS = frozenset({"x-request-id", "request-id"})
access_log = get_logger("access")


def new_request_id() -> str:
    """A fresh request id, ``req_`` + 24 hex digits."""
    return "req_" + os.urandom(12).hex()


class RequestLifecycle:
    """Assigns the request id, echoes it, and logs and measures the request once its body is sent."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, log_requests: bool = True,
                 metrics: MetricsRecorder = NULL_METRICS) -> None:
        self.app = app
        self.log_requests = log_requests
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        supplied = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _VALID_ID.match(supplied) else new_request_id()
        environ["lynkr.request_id"] = request_id
        fields: dict[str, Any] = {}
        environ["lynkr.log"] = fields
        REQUEST_ID.set(request_id)
        environ["lynkr.started"] = started = time.perf_counter()
        sent: dict[str, Any] = {}  # status line, route template, whether it is an SSE stream

        def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not sent:
                # Flask calls this inside its request context: the matched rule is still known
                # here, and gone once the body has been sent.
                sent["route"] = route_template(environ)
                sent["stream"] = _is_event_stream(headers)
                if sent["stream"]:
                    self.metrics.stream_opened()
            sent["status"] = status
            kept = [(name, value) for name, value in headers if name.lower() not in _ID_HEADERS]
            return start_response(status, [*kept, ("X-Request-ID", request_id), ("request-id", request_id)],
                                  exc_info)

        body = self.app(environ, _start_response)
        return _LoggedBody(body, lambda: self._finish(environ, sent, started, fields))

    def _finish(self, environ: dict[str, Any], sent: dict[str, Any], started: float,
                fields: dict[str, Any]) -> None:
        duration_s = time.perf_counter() - started
        status = int(sent["status"].split(" ", 1)[0]) if sent else 0
        if sent.get("stream"):
            self.metrics.stream_closed()
        self.metrics.observe_request(environ.get("REQUEST_METHOD", ""), sent.get("route", UNMATCHED), status,
                                     duration_s)
        if self.log_requests:
            level = logging.WARNING if status >= 500 else logging.INFO
            access_log.log(level, "request", extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": status,
                "duration_ms": round(duration_s * 1000, 2),
                **fields,
            })
        REQUEST_ID.set(None)


def _is_event_stream(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-type" and value.startswith("text/event-stream") for name, value in headers)


class _LoggedBody:
    """A response iterable that calls ``on_close`` once, after the server closes it."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self.body = body
        self.on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()
