"""WSGI middleware: request id, and the one access-log line written when a response ends.

It wraps the Flask app so it sees every response — errors and streams included — and times a
streamed response to its last byte, not to when the view returned. Views add ``provider`` and
``model`` for the log line through ``environ["lynkr.log"]``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.logging import REQUEST_ID, get_logger

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = get_logger("access")


def new_request_id() -> str:
    """A fresh request id, ``req_`` + 24 hex digits."""
    return "req_" + os.urandom(12).hex()


class RequestLifecycle:
    """Assigns the request id, echoes it, and logs the request once its body is sent."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        supplied = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _VALID_ID.match(supplied) else new_request_id()
        environ["lynkr.request_id"] = request_id
        environ["lynkr.log"] = fields = {}
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status_box: list[str] = []

        def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_box.append(status)
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        body = self.app(environ, _start_response)
        return _LoggedBody(body, lambda: self._finish(environ, status_box, started, fields))

    def _finish(self, environ: dict[str, Any], status_box: list[str], started: float,
                fields: dict[str, Any]) -> None:
        if self.log_requests:
            status = int(status_box[-1].split(" ", 1)[0]) if status_box else 0
            level = logging.WARNING if status >= 500 else logging.INFO
            access_log.log(level, "request", extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                **fields,
            })
        REQUEST_ID.set(None)


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
