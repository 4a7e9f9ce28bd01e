"""The Anthropic Messages API: ``/v1/messages`` (JSON and SSE), ``count_tokens``, ``models``.

Also ``HEAD /`` and ``GET /`` (Claude Code's connectivity check), ``POST
/api/event_logging/batch`` (its telemetry, accepted and dropped) and ``/openapi.json`` (the
OpenAPI document of every route but the dashboard's pages). The query string of
``/v1/messages`` is ignored: Claude Code sends ``?beta=true``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, cast

import orjson
from flask import Blueprint, Response, request

from app.accounting.usage import RequestRecord
from app.anthropic import sse, tokens
from app.anthropic.encoded import Encoded
from app.anthropic.events import StreamBuilder
from app.cache.prompt import hit_events
from app.errors import InvalidRequestError, LynkrError, NotFoundError, OverloadedError, RequestTooLargeError
from app.exchange import Exchange
from app.metrics.recorder import metrics_of
from app.orchestrator import StreamAnswer
from app.providers.base import CallContext, Provider
from app.resilience.retry import queued_ms_from_header
from app.routing import CLOUD_TIER, TIERS, is_claude_model, parse_aliases
from app.sources import open_sources
from app.storage.sessions import session_id_from
from app.web import streaming
from app.web.error_handlers import EXCHANGE_BEGUN
from app.web.schemas import (
    adopt_seed_shapes,
    parse_json,
    parse_messages_request,
    validate_count_tokens_request,
    validate_messages_request,
)
from app.web.services import Services, services

bp = Blueprint("messages", __name__)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DRAIN_RETRY_AFTER = "5"
SHED_RETRY_AFTER = "5"
READ_CHUNK = 64 * 1024
CLAUDE_NAMES = ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5")
MODELS_CREATED_AT = "2025-01-01T00:00:00Z"
DEFAULT_MODELS_PAGE, MAX_MODELS_PAGE = 20, 1000
TOO_LARGE = "Request body is larger than the limit (REQUEST_JSON_LIMIT)."


@bp.before_app_request
def _authenticate() -> None:
    if request.path.startswith("/v1/"):
        request.environ["lynkr.api_key"] = services().keys.check(_headers())


def _headers() -> Mapping[str, str]:
    """The request's headers (Werkzeug's ``Headers`` reads as a case-insensitive mapping)."""
    return cast("Mapping[str, str]", request.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def _parse_body() -> Any:
    request.environ["lynkr.body"] = body = parse_json(_counted_body())
    return body


def _parse_messages_body() -> tuple[Any, Encoded | None]:
    """The parsed body and its messages, each serialised once: validation, the token estimate, the
    transcript and the upstream body reuse these bytes and what each message's notes remember."""
    body, given = parse_messages_request(_counted_body())
    request.environ["lynkr.body"] = body
    return body, given


def _counted_body() -> bytes:
    raw = _read_body()
    request.environ["lynkr.body_bytes"] = len(raw)
    return raw


def _read_body() -> bytes:
    """The request body; 413 when it is over ``REQUEST_JSON_LIMIT``, announced or not.

    Werkzeug stops a body without ``Content-Length`` (chunked) silently at the limit, which
    would turn an oversized upload into truncated JSON; here one byte past the limit is a 413.
    """
    limit = request.max_content_length
    if request.content_length is not None or limit is None:
        if limit is not None and request.content_length is not None and request.content_length > limit:
            raise RequestTooLargeError(TOO_LARGE)
        return request.get_data(cache=False)
    if not request.environ.get("wsgi.input_terminated"):
        return b""  # a server that cannot end a body of unknown length: read nothing, as Werkzeug does
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise RequestTooLargeError(TOO_LARGE)


@bp.post("/v1/messages")
def create_message() -> Response:
    """Create a message, as JSON or as an SSE stream."""
    svc = services()
    if svc.drain.draining:
        metrics_of().shed("draining")
        raise OverloadedError("Lynkr is shutting down; retry shortly.", status=503,
                              headers={"retry-after": DRAIN_RETRY_AFTER})
    parsed, given = _parse_messages_body()
    body = validate_messages_request(adopt_seed_shapes(parsed, _max_output_tokens), given)
    _shed(svc)
    slot = svc.limiter.slot()
    if slot is None:
        metrics_of().shed("concurrency")
        raise OverloadedError("Too many requests in flight on this worker; retry shortly.",
                              headers={"retry-after": "1"})
    try:
        record = _record(body)
        ctx = CallContext(request_id=record.request_id, requested_model=body["model"],
                          anthropic_version=request.headers.get("anthropic-version"),
                          anthropic_beta=request.headers.get("anthropic-beta"), encoded=given)
        exchange = Exchange(body, ctx, record, svc.orchestrator.cache, slot.release)
    except BaseException:
        slot.release()  # no exchange owns it yet
        raise
    request.environ[EXCHANGE_BEGUN] = True  # from here on Orchestrator.settle writes the usage row
    try:
        outcome = svc.orchestrator.handle(exchange)
    finally:
        _log_route(request.environ["lynkr.log"], record)
    if isinstance(outcome, StreamAnswer):
        return _sse(svc, outcome, record)
    headers = {**outcome.headers, **_lynkr_headers(record)}
    if exchange.stream:  # a prompt-cache hit, replayed as a stream
        events = hit_events(outcome.message, StreamBuilder(message_id=outcome.message["id"],
                                                           model=outcome.message["model"]))
        return Response(b"".join(sse.encode(e) for e in events), status=200, mimetype="text/event-stream",
                        headers={**SSE_HEADERS, **headers})
    return json_response(outcome.message, headers=headers)


def _max_output_tokens(model: str) -> int:
    """The default ``max_tokens``: what the default provider's model for ``model`` can produce."""
    provider = services().provider
    return provider.caps(provider.upstream_model(model)).max_output_tokens


def _shed(svc: Services) -> None:
    start = request.headers.get("X-Request-Start")
    queued = queued_ms_from_header(start, time.time()) if start else None
    reason = svc.shedder.check(svc.limiter.in_flight, queued, open_sources())
    if reason:
        metrics_of().shed(reason)
        raise OverloadedError(f"Lynkr is overloaded ({reason}); retry shortly.", status=503,
                              headers={"retry-after": SHED_RETRY_AFTER})


def _record(body: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        request_id=request.environ["lynkr.request_id"], path="/v1/messages",
        session_id=session_id_from(_headers(), body), api_key=request.environ.get("lynkr.api_key"),
        model_requested=body["model"], stream=bool(body.get("stream")),
        body_bytes=request.environ.get("lynkr.body_bytes", 0),
    )


def _lynkr_headers(record: RequestRecord) -> dict[str, str]:
    return {"X-Lynkr-Provider": record.provider or "", "X-Lynkr-Model": record.model or "",
            "X-Lynkr-Route-Reason": record.route_reason or ""}


def _sse(svc: Services, answer: StreamAnswer, record: RequestRecord) -> Response:
    log_fields = request.environ["lynkr.log"]

    def done(finished: StreamBuilder, failure: LynkrError | None) -> None:
        answer.on_done(finished, failure)
        # The access line is written after the stream: it names who really answered.
        _log_route(log_fields, record)

    body = streaming.generate(answer.start, answer.builder, svc.config.ping_interval_ms / 1000, done)
    return Response(body, status=200, mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **answer.headers, **_lynkr_headers(record)})


def _log_route(fields: dict[str, Any], record: RequestRecord) -> None:
    """Name who answered on the request's access log line."""
    fields.update(provider=record.provider, model=record.model, route_reason=record.route_reason)


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Count input tokens locally, with no upstream call."""
    body = validate_count_tokens_request(_parse_body())
    return json_response({"input_tokens": tokens.count_tokens(body)})


@bp.get("/v1/models")
def list_models() -> Response:
    """The models this gateway serves: the Claude names it maps, then the upstream models and aliases
    of the providers it routes to; paged like Anthropic's (``limit``, ``after_id``, ``before_id``)."""
    models = _catalogue(services())
    ids = [model["id"] for model in models]
    start, end = 0, len(models)
    after, before = request.args.get("after_id"), request.args.get("before_id")
    if after in ids:
        start = ids.index(after) + 1
    if before in ids:
        end = ids.index(before)
    limit = _limit(request.args.get("limit"))
    page = models[start:end][-limit:] if before and not after else models[start:end][:limit]
    return json_response({"data": page, "has_more": len(page) < len(models[start:end]),
                          "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None})


@bp.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    """One model: a listed one, or any Claude name (which the gateway maps); 404 otherwise."""
    svc = services()
    for model in _catalogue(svc):
        if model["id"] == model_id:
            return json_response(model)
    if is_claude_model(model_id):
        return json_response(_claude_model(model_id, svc))
    raise NotFoundError(f"model: {model_id} is not served by this gateway (GET /v1/models lists what is).")


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_MODELS_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_MODELS_PAGE:
        raise InvalidRequestError(f"limit: must be an integer from 1 to {MAX_MODELS_PAGE}")
    return int(value)


def _catalogue(svc: Services) -> list[dict[str, str]]:
    """Claude names first (each mapped by the default provider), then each served provider's models."""
    models = {name: _claude_model(name, svc) for name in CLAUDE_NAMES}
    aliases = parse_aliases(svc.config.model_aliases) if svc.config.model_aliases else {}
    for alias in aliases:
        if is_claude_model(alias) and alias not in models and alias not in TIERS:
            models[alias] = _claude_model(alias, svc)
    for provider in _served(svc):
        upstream = [provider.upstream_model(name) for name in CLAUDE_NAMES] + list(aliases.values())
        for name in upstream:
            models.setdefault(name, _model(name, f"{name} on {provider.name}"))
    return list(models.values())


def _served(svc: Services) -> list[Provider]:
    """The providers a request can be routed to: the default, then routing tiers, fallback and rules."""
    config = svc.config
    names = ["ollama", *CLOUD_TIER] if config.prefer_ollama else [config.model_provider]
    if config.fallback_enabled:
        names.append(config.fallback_provider)
    names += [rule.provider for rule in svc.orchestrator.router.rules]
    served = [config.model_provider] + [n for n in names if n in svc.providers and svc.providers[n].configured]
    return [svc.providers[name] for name in dict.fromkeys(served) if name in svc.providers]


def _claude_model(name: str, svc: Services) -> dict[str, str]:
    provider = svc.provider
    return _model(name, f"{name} via {provider.name} ({provider.upstream_model(name)})")


def _model(model_id: str, display_name: str) -> dict[str, str]:
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": MODELS_CREATED_AT}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of the gateway's routes, shipped in the package."""
    return Response(_openapi_document(), mimetype="application/json")


@cache
def _openapi_document() -> bytes:
    return resources.files("app.web").joinpath("openapi.json").read_bytes()


@bp.route("/", methods=["GET", "HEAD"])
def root() -> Response:
    """Connectivity check."""
    return json_response({"name": "lynkr", "status": "ok"})


@bp.post("/api/event_logging/batch")
def event_logging() -> Response:
    """Claude Code's telemetry batches: accepted and dropped."""
    return json_response({})
