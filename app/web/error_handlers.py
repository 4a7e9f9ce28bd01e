"""Flask error handlers: every error any route returns is the one Anthropic envelope."""

from __future__ import annotations

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import LynkrError, error_envelope, error_type_for_status
from app.logging import get_logger

log = get_logger("errors")


def request_id() -> str | None:
    """The current request's id, as assigned by the middleware."""
    return request.environ.get("lynkr.request_id")


def error_response(error: LynkrError) -> Response:
    """Render a :class:`LynkrError` as its status, headers and Anthropic error body."""
    body = orjson.dumps(error.envelope(request_id()))
    response = Response(body, status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _lynkr_error(error: LynkrError) -> Response:
    level = log.warning if error.status >= 500 else log.info
    level("%s: %s", error.error_type, error.message, extra={"status": error.status})
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
    if status == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unhandled(error: Exception) -> Response:
    log.exception("unhandled error")
    body = orjson.dumps(error_envelope("api_error", "Internal server error", request_id()))
    return Response(body, status=500, mimetype="application/json")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(LynkrError, _lynkr_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
