"""Flask error handlers: every error any route returns is the one Anthropic envelope.

Every error body carries the request's ``request_id``, an Anthropic-format upstream's own body
included (it keeps an id of its own when it has one). A ``/v1/messages`` request refused before
its exchange began (bad body, no key, too large, draining, shed) gets its usage row here: an
exchange, once made, is recorded by :meth:`app.orchestrator.Orchestrator.settle` instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from app.accounting.usage import RequestRecord, write_record
from app.errors import LynkrError, error_envelope, error_type_for_status
from app.logging import get_logger
from app.storage.sessions import session_id_from
from app.web.schemas import MAX_MODEL_CHARS
from app.web.services import services

log = get_logger("errors")
RECORDED_PATHS = frozenset({"/v1/messages"})
EXCHANGE_BEGUN = "lynkr.exchange"  # environ key the view sets once Orchestrator.handle owns the request
_REFUSAL_RECORDED = "lynkr.refusal_recorded"


def request_id() -> str | None:
    """The current request's id, as assigned by the middleware."""
    return request.environ.get("lynkr.request_id")


def error_response(error: LynkrError) -> Response:
    """Render a :class:`LynkrError` as its status, headers and Anthropic error body."""
    body = error.envelope(request_id())
    if isinstance(body, dict) and not body.get("request_id"):
        body = {**body, "request_id": request_id()}
    response = Response(orjson.dumps(body), status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _lynkr_error(error: LynkrError) -> Response:
    level = log.warning if error.status >= 500 else log.info
    level("%s: %s", error.error_type, error.message, extra={"status": error.status})
    record_refusal(error.status, error.error_type)
    return error_response(error)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error, RequestEntityTooLarge):
        message = "Request body is larger than the limit (REQUEST_JSON_LIMIT)."
    elif status == 404:
        message = f"Not found: {request.method} {request.path}"
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.path}"
    else:
        message = error.description or error.name
    wrapped = LynkrError(message, status=status, error_type=error_type_for_status(status))
    response = _lynkr_error(wrapped)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unhandled(error: Exception) -> Response:
    log.exception("unhandled error")
    record_refusal(500, "api_error")
    body = orjson.dumps(error_envelope("api_error", "Internal server error", request_id()))
    return Response(body, status=500, mimetype="application/json")


def record_refusal(status: int, error_type: str) -> None:
    """Queue the usage row of a ``/v1/messages`` request that ended before its exchange began.

    Once per request; nothing for other paths, or when the orchestrator owns the request.
    """
    environ = request.environ
    if request.path not in RECORDED_PATHS or environ.get(EXCHANGE_BEGUN) or environ.get(_REFUSAL_RECORDED):
        return
    environ[_REFUSAL_RECORDED] = True
    body = environ.get("lynkr.body")
    record = RequestRecord(
        request_id=request_id() or "", path=request.path, api_key=environ.get("lynkr.api_key"),
        model_requested=_field(body, "model", str), stream=bool(_field(body, "stream", bool)),
        status=status, error_type=error_type, duration_ms=_elapsed_ms(environ.get("lynkr.started")),
    )
    record.session_id = _session_id(body)
    services().recorder.submit(lambda: write_record(record))


def _field(body: Any, name: str, kind: type) -> Any:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        return None
    return value[:MAX_MODEL_CHARS] if isinstance(value, str) else value


def _session_id(body: Any) -> str | None:
    return session_id_from(cast("Mapping[str, str]", request.headers), body if isinstance(body, dict) else {})


def _elapsed_ms(started: float | None) -> float | None:
    return round((time.perf_counter() - started) * 1000, 2) if started is not None else None


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(LynkrError, _lynkr_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
