"""The provider interface and the machinery every provider shares.

Each provider module is a small subclass that says only what differs — URL, auth, headers,
model mapping, which format — so the provider files diff cleanly. The three operations are
the same everywhere:

- ``convert_request(request, ctx, stream)`` → :class:`UpstreamRequest` (pure),
- ``send(request, ctx)`` → :class:`Reply` (a complete Anthropic ``Message``),
- ``open_stream(request, ctx)`` → :class:`UpstreamStream`.

*Validate eagerly, iterate lazily*: ``open_stream`` sends the request and checks the status,
raising a :class:`~app.errors.LynkrError` before anything is returned, so routing can fall
back and the client still gets a proper status. The returned stream yields the upstream's
parsed items; a format's ``StreamTranslator`` turns them into Anthropic events.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import requests

from app.anthropic.encoded import Encoded
from app.anthropic.events import StreamBuilder
from app.anthropic.sse import EventTooLargeError, FramedEvent, ServerSentEvent, SSEDecoder
from app.config import Config
from app.errors import LynkrError, ProviderNotConfiguredError, UpstreamError, error_type_for_status
from app.logging import get_logger
from app.providers._http import (
    HttpClient,
    UpstreamTooLargeError,
    client_headers,
    map_stream_exceptions,
    read_body,
)
from app.providers.capabilities import CapabilityTable, ModelCapabilities
from app.providers.wire import BodyReader, Pause
from app.routing import resolve_model

log = get_logger("providers")
PROBE_MODEL = "claude-sonnet-4-5"


@dataclass(frozen=True)
class CallContext:
    """What a provider needs to know about the client's call beyond its body."""

    request_id: str
    requested_model: str
    anthropic_version: str | None = None
    anthropic_beta: str | None = None
    model_override: str | None = None  # set by a routing rule that names provider:model
    # The client's messages as parsed and serialised once; a body built from them reuses the bytes.
    encoded: Encoded | None = field(default=None, compare=False, repr=False)


@dataclass
class UpstreamRequest:
    """A converted request, ready to send."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    model: str
    payload: bytes | None = None  # ``body`` serialised, when the conversion built it already


@dataclass
class Reply:
    """A complete answer from an upstream, already in Anthropic form."""

    message: dict[str, Any]
    headers: dict[str, str]
    provider: str
    model: str


@dataclass
class UpstreamStream:
    """An open upstream stream: parsed items to translate (with :class:`Pause` markers between
    them), read on the caller's thread by ``reader``."""

    provider: str
    model: str
    reader: BodyReader
    items: Iterator[Any]
    translator: Callable[[StreamBuilder], Any]
    headers: dict[str, str] = field(default_factory=dict)

    def pace(self, tick_s: float) -> None:
        """Hand out :data:`SILENT` after each ``tick_s`` seconds without data."""
        self.reader.tick_s = tick_s

    def close(self) -> None:
        """Abort from any thread: shut the socket so a read blocked on it wakes."""
        self.reader.close()

    def release(self) -> None:
        """Release the connection once reading has ended (back to the pool if read to its end)."""
        self.reader.release()


class Provider(ABC):
    """Base class: subclasses set ``name`` and the per-provider hooks below."""

    name: ClassVar[str]
    default_model: ClassVar[str] = ""
    relays_frames: ClassVar[bool] = False  # its stream events are Anthropic's, to send on as read

    def __init__(self, config: Config, capabilities: CapabilityTable, http: HttpClient) -> None:
        self.config = config
        self.capabilities = capabilities
        self.http = http
        self._clamps_noted: set[str] = set()

    # -- per-provider hooks ---------------------------------------------------------------------

    @abstractmethod
    def missing_settings(self) -> list[str]:
        """Environment variables that must be set before this provider can be called."""

    @abstractmethod
    def url(self) -> str:
        """The endpoint requests are posted to."""

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Credentials for the upstream."""

    def upstream_model(self, requested: str) -> str:
        """The model to call for the client's model name."""
        return self.mapped(requested, self.config.model_default or self.default_model)

    def model_for(self, ctx: CallContext) -> str:
        """The upstream model for this call: a routing rule's choice, else the mapping."""
        return ctx.model_override or self.upstream_model(ctx.requested_model)

    @classmethod
    def variant(cls, config: Config) -> type[Provider]:
        """The class serving this provider name under ``config`` (Databricks has two formats)."""
        return cls

    # -- shared operations ----------------------------------------------------------------------

    def mapped(self, requested: str, default: str) -> str:
        """Claude names → ``default`` (or a ``MODEL_ALIASES`` tier); other names pass through."""
        return resolve_model(requested, default, self.config.model_aliases)

    @property
    def configured(self) -> bool:
        """Whether every required setting is present."""
        return not self.missing_settings()

    def ensure_configured(self) -> None:
        """Raise :class:`ProviderNotConfiguredError` naming the variables to set."""
        missing = self.missing_settings()
        if missing:
            raise ProviderNotConfiguredError(self.name, missing)

    def incompatibility(self, request: Mapping[str, Any], estimated_tokens: int, images: bool,
                        model: str | None = None) -> str | None:
        """Why this provider's model (``model``, else the mapped one) cannot take ``request``
        (``images``: whether it carries any)."""
        caps = self.caps(model or self.upstream_model(str(request.get("model", ""))))
        if not caps.vision and images:
            return "vision_incompatible"
        if caps.context_window is not None and estimated_tokens > caps.context_window:
            return "context_too_long"
        return None

    def caps(self, model: str) -> ModelCapabilities:
        """Capabilities of the upstream model."""
        return self.capabilities.model(model)

    def context_window_text(self, model: str) -> str:
        """The context window the gateway holds ``model``'s prompts to, as ``lynkr check`` shows it."""
        window = self.caps(model).context_window
        return f"{window} tokens" if window is not None else "unknown — the upstream decides"

    def note_clamp(self, request: dict[str, Any], model: str, caps: ModelCapabilities) -> None:
        """Log, once per model, that the client's ``max_tokens`` is over its output limit (the format clamps it).

        Claude Code asks for 32k to 128k on every request: a line each time would be noise, and
        cost a JSON log line per request.
        """
        wanted, allowed = request.get("max_tokens"), caps.max_output_tokens
        if isinstance(wanted, int) and wanted > allowed and model not in self._clamps_noted:
            self._clamps_noted.add(model)
            log.warning("max_tokens %s clamped to %s, the output limit of %s", wanted, allowed, model,
                        extra={"requested_max_tokens": wanted, "allowed_max_tokens": allowed})

    @abstractmethod
    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        """Build the upstream request (pure)."""

    def _post(self, request: dict[str, Any], ctx: CallContext, *,
              stream: bool) -> tuple[UpstreamRequest, requests.Response, dict[str, str]]:
        """Convert and send ``request``; an error status raises, carrying the upstream's own
        ``retry-after`` for the retry decision (the client sees a capped copy)."""
        self.ensure_configured()
        upstream = self.convert_request(request, ctx, stream=stream)
        response = self.http.post(upstream.url, headers=upstream.headers,
                                  body=upstream.payload or orjson.dumps(upstream.body), stream=stream)
        headers = client_headers(response.headers)
        if response.status_code >= 400:
            try:
                content = read_body(response, self.name, upstream.url, self.config.max_upstream_event_bytes)
                error = self.error_for(response.status_code, content, headers)
            finally:
                response.close()
            error.retry_after = response.headers.get("retry-after")
            raise error
        return upstream, response, headers

    def send(self, request: dict[str, Any], ctx: CallContext) -> Reply:
        """Send a non-streaming request and return the complete answer."""
        upstream, response, headers = self._post(request, ctx, stream=False)
        content = read_body(response, self.name, upstream.url, self.config.max_upstream_event_bytes)
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"{self.name} answered with a body that is not JSON.",
                                provider=self.name) from exc
        return Reply(self.message_from(body, request, ctx), headers, self.name, upstream.model)

    def open_stream(self, request: dict[str, Any], ctx: CallContext) -> UpstreamStream:
        """Open a streaming request; raises before returning when the upstream refuses."""
        upstream, response, headers = self._post(request, ctx, stream=True)
        reader = BodyReader(response, self.http.timeout[1])
        items = self._guarded(self.stream_items(reader.pieces()), upstream.url)
        return UpstreamStream(self.name, upstream.model, reader, items,
                              lambda builder: self.translator(builder, request, upstream.model), headers)

    def _guarded(self, items: Iterator[Any], url: str) -> Iterator[Any]:
        """``items`` with every read failure raised as this provider's :class:`LynkrError`."""
        with map_stream_exceptions(self.name, url):
            try:
                yield from items
            except EventTooLargeError as exc:
                raise UpstreamTooLargeError(self.name, exc.limit) from exc
            except ValueError as exc:  # an SSE or NDJSON payload that is not JSON
                raise UpstreamError(f"{self.name} sent a stream event that is not valid JSON.",
                                    provider=self.name) from exc

    def probe(self) -> dict[str, Any]:
        """A one-token request: reachable, authenticated, model known."""
        model = self.upstream_model(PROBE_MODEL)
        ctx = CallContext(request_id="req_probe", requested_model=model)
        request = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}
        started = time.perf_counter()
        try:
            reply = self.send(request, ctx)
        except LynkrError as exc:
            return {"ok": False, "provider": self.name, "model": model, "status": exc.status, "error": exc.message}
        return {"ok": True, "provider": self.name, "model": reply.model,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    # -- format hooks (set by the format family) ----------------------------------------------------

    @abstractmethod
    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The Anthropic ``Message`` for an upstream JSON body."""

    @abstractmethod
    def translator(self, builder: StreamBuilder, request: dict[str, Any], model: str) -> Any:
        """A format ``StreamTranslator`` feeding ``builder``."""

    def stream_items(self, pieces: Iterable[bytes | Pause]) -> Iterator[Any]:
        """Parsed items of the upstream stream's body ``pieces`` (SSE data by default), pauses kept."""
        return sse_items(pieces, self.config.max_upstream_event_bytes, framed=self.relays_frames)

    def error_for(self, status: int, content: bytes, headers: dict[str, str]) -> LynkrError:
        """The error for an upstream HTTP error status."""
        message = _error_message(content) or f"{self.name} returned HTTP {status}."
        return LynkrError(message, status=status, error_type=error_type_for_status(status),
                          headers=headers, provider=self.name)


def has_images(request: dict[str, Any]) -> bool:
    """Whether any message carries an image (tool results included)."""
    for message in request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                inner = block.get("content") if block.get("type") == "tool_result" else None
                if block.get("type") == "image" or (
                        isinstance(inner, list) and any(b.get("type") == "image" for b in inner)):
                    return True
    return False


def sse_items(pieces: Iterable[bytes | Pause], max_event_bytes: int | None = None,
              framed: bool = False) -> Iterator[Any]:
    """Parse an SSE body into JSON items; ``[DONE]`` becomes the string ``"[DONE]"``; pauses pass through.

    With ``framed``, an object whose event's bytes can be sent on as they are comes as a
    :class:`~app.anthropic.sse.FramedEvent`. A line or event over ``max_event_bytes`` raises
    :class:`~app.anthropic.sse.EventTooLargeError`.
    """
    decoder = SSEDecoder(max_event_bytes)
    for chunk in pieces:
        if isinstance(chunk, Pause):
            yield chunk
            continue
        try:
            events = decoder.feed(chunk)
        except EventTooLargeError as exc:
            yield from _parsed(exc.completed, framed)  # what came before the oversized line, then the failure
            raise
        yield from _parsed(events, framed)


def _parsed(events: list[ServerSentEvent], framed: bool) -> Iterator[Any]:
    for event in events:
        if event.data == "[DONE]":
            yield "[DONE]"
            continue
        data = orjson.loads(event.data)
        yield FramedEvent(data, event.frame) if framed and event.frame and isinstance(data, dict) else data


def _error_message(content: bytes) -> str | None:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", "replace").strip()
        return text[:500] or None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return None


def anthropic_error_body(content: bytes) -> dict[str, Any] | None:
    """An upstream's Anthropic error envelope, when the body is one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict):
        return body
    return None
