"""Ollama's native ``/api/chat``: NDJSON streaming, no auth, its own read timeout.

Translation lives in :mod:`app.providers.formats.ollama.convert`. Quirks handled here:

- Ollama answers 400 to a request with ``tools`` for a model without tool support, and to
  ``think: true`` for a model that cannot think. What a model can do comes from
  ``POST /api/show`` (``capabilities``, or the template on older servers, or the model name
  when the server cannot be asked), cached per model for ten minutes (a guess from the name
  for thirty seconds); the same answer's ``vision`` decides whether images are sent or
  replaced by a note. Tools the model cannot take are left out with a warning (the Node
  Lynkr's behaviour with fallback off); routing asks :meth:`OllamaProvider.supports_tools`
  to send such requests elsewhere instead.
- A local model can take minutes to load before its first byte, so the read timeout is
  ``OLLAMA_TIMEOUT_MS`` rather than the generic upstream timeout.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from cachetools import TLRUCache

from app.anthropic.events import StreamBuilder
from app.anthropic.sse import EventTooLargeError
from app.config import Config
from app.errors import LynkrError
from app.logging import get_logger
from app.providers._http import HttpClient
from app.providers.base import PROBE_MODEL, CallContext, Provider, UpstreamRequest, has_images
from app.providers.capabilities import CapabilityTable, ModelCapabilities
from app.providers.formats.ollama import convert as ollama
from app.providers.wire import Pause

log = get_logger("providers.ollama")
USER_AGENT = "lynkr/0.1"
FEATURES_TTL_S = 600
GUESS_TTL_S = 30  # a guess from the name (the server could not be asked) is retried sooner
SHOW_READ_TIMEOUT_S = 10.0


class OllamaProvider(Provider):
    name = "ollama"
    default_model = "qwen2.5-coder:7b"

    def __init__(self, config: Config, capabilities: CapabilityTable, http: HttpClient) -> None:
        super().__init__(config, capabilities, http)
        # The pool is this provider's own; only its read timeout differs from the generic one.
        self.http.timeout = (http.timeout[0], config.ollama_timeout_ms / 1000)
        self._features: TLRUCache[str, ollama.ModelFeatures] = TLRUCache(maxsize=256, ttu=_features_expiry)
        self._features_lock = threading.Lock()

    def missing_settings(self) -> list[str]:
        """The server's URL and the model for Claude model names (both have defaults)."""
        config = self.config
        return [env for env, value in (("OLLAMA_ENDPOINT", config.ollama_endpoint),
                                       ("OLLAMA_MODEL", config.ollama_model)) if not value]

    def url(self) -> str:
        """``{OLLAMA_ENDPOINT}/api/chat``."""
        return self._api("chat")

    def auth_headers(self) -> dict[str, str]:
        """None: Ollama takes no credentials."""
        return {}

    def upstream_model(self, requested: str) -> str:
        """Claude names → ``OLLAMA_MODEL``; other names pass through."""
        return self.mapped(requested, self.config.ollama_model)

    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        """Translate to ``/api/chat``; tools and thinking the model cannot take are left out."""
        model = self.model_for(ctx)
        caps = self._request_caps(request, model)
        self.note_clamp(request, model, caps)
        if ollama.wants_tools(request) and not caps.tools:
            log.warning("Ollama model %s has no tool support: sending the request without its tools", model)
        can_think = not ollama.wants_thinking(request) or self.features(model).thinking
        if not can_think:
            log.info("Ollama model %s cannot think: sending the request without think", model)
        for note in ollama.dropped_notes(request):
            log.info("Ollama model %s: %s", model, note)
        body = ollama.to_upstream(request, model=model, caps=caps, stream=stream,
                                  keep_alive=self.config.ollama_keep_alive or None, can_think=can_think)
        headers = {"content-type": "application/json",
                   "accept": "application/x-ndjson" if stream else "application/json", "user-agent": USER_AGENT}
        return UpstreamRequest(self.url(), headers, body, model)

    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Translate the answer; an ``{"error": ...}`` body becomes an Anthropic error."""
        model = self.model_for(ctx)
        try:
            return ollama.from_upstream(body, message_id="msg_" + ctx.request_id.removeprefix("req_"),
                                        model=ctx.requested_model, request=request,
                                        caps=self._request_caps(request, model))
        except ollama.UpstreamFormatError as exc:
            raise LynkrError(exc.message, status=exc.status, error_type=exc.error_type,
                             provider=self.name) from exc

    def translator(self, builder: StreamBuilder, request: dict[str, Any], model: str) -> Any:
        """An ``/api/chat`` NDJSON stream translator."""
        return ollama.StreamTranslator(builder, request=request, caps=self._request_caps(request, model))

    def stream_items(self, pieces: Iterable[bytes | Pause]) -> Iterator[Any]:
        """Parsed NDJSON lines (one JSON object per line), pauses kept."""
        return ndjson_items(pieces, self.config.max_upstream_event_bytes)

    def error_for(self, status: int, content: bytes, headers: dict[str, str]) -> LynkrError:
        """Ollama errors typed by status and wording; context overflow in Anthropic's wording."""
        try:
            body: Any = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = content.decode("utf-8", "replace")[:500]
        window = self.caps(self.upstream_model(PROBE_MODEL)).context_window
        status, error_type, message = ollama.upstream_error(status, body, context_window=window)
        return LynkrError(message, status=status, error_type=error_type, headers=headers, provider=self.name)

    # -- what a model can do ----------------------------------------------------------------------

    def incompatibility(self, request: Mapping[str, Any], estimated_tokens: int, images: bool,
                        model: str | None = None) -> str | None:
        """Tools for a model without tool support make the request incompatible, too; whether
        images can go is what ``/api/show`` says, when it says."""
        name = self.upstream_model(model or str(request.get("model", "")))
        if request.get("tools") and not self.features(name).tools:
            return "tool_incompatible"
        if images and not self.supports_vision(name):
            return "vision_incompatible"
        return super().incompatibility(request, estimated_tokens, False, model)

    def supports_tools(self, model: str) -> bool:
        """Whether the Ollama model (or the one a Claude name maps to) takes ``tools``."""
        return self.features(self.upstream_model(model)).tools

    def supports_vision(self, model: str) -> bool:
        """Whether the Ollama model sees images: its ``/api/show`` capabilities, else the capability table."""
        name = self.upstream_model(model)
        listed = self.features(name).vision
        return self.caps(name).vision if listed is None else listed

    def supports_thinking(self, model: str) -> bool:
        """Whether the Ollama model (or the one a Claude name maps to) takes ``think``."""
        return self.features(self.upstream_model(model)).thinking

    def features(self, model: str) -> ollama.ModelFeatures:
        """What ``model`` can do, from ``/api/show`` (cached), else guessed from its name."""
        with self._features_lock:
            cached = self._features.get(model)
        if cached is not None:
            return cached
        body = self._show(model)
        features = ollama.features_from_name(model) if body is None else ollama.features_from_show(body, model)
        with self._features_lock:
            self._features[model] = features
        return features

    def _show(self, model: str) -> Any:
        """The ``/api/show`` body for ``model``, or None when the server cannot say."""
        try:
            response = self.http.post(self._api("show"), headers={"content-type": "application/json"},
                                      body=orjson.dumps({"model": model}), stream=False,
                                      timeout=(self.http.timeout[0], SHOW_READ_TIMEOUT_S))
        except LynkrError as exc:
            log.info("Ollama /api/show for %s failed: %s", model, exc.message)
            return None
        if response.status_code != 200:
            log.info("Ollama /api/show for %s answered HTTP %s", model, response.status_code)
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None

    def _request_caps(self, request: dict[str, Any], model: str) -> ModelCapabilities:
        """The model's capabilities, with ``tools`` off when the request has tools it cannot take,
        and ``vision`` as ``/api/show`` says when the request carries images."""
        caps = self.caps(model)
        if has_images(request) and self.supports_vision(model) != caps.vision:
            caps = dataclasses.replace(caps, vision=not caps.vision)
        if caps.tools and ollama.wants_tools(request) and not self.features(model).tools:
            return dataclasses.replace(caps, tools=False)
        return caps

    def _api(self, path: str) -> str:
        """``{OLLAMA_ENDPOINT}/api/<path>``, whether the endpoint was given with ``/api`` or without."""
        base = self.config.ollama_endpoint.rstrip("/").removesuffix("/api/chat").removesuffix("/api")
        return f"{base}/api/{path}"


def _features_expiry(_model: str, features: ollama.ModelFeatures, now: float) -> float:
    return now + (GUESS_TTL_S if features.source == "name" else FEATURES_TTL_S)


def ndjson_items(body: Iterable[bytes | Pause], max_line_bytes: int | None = None) -> Iterator[Any]:
    """Parse an NDJSON body into JSON items: lines may be split across reads; blank lines are
    skipped; pauses pass through.

    Linear in the body's size: an unfinished line is kept as pieces, joined once when it ends.
    A line over ``max_line_bytes`` raises :class:`~app.anthropic.sse.EventTooLargeError`.
    """
    pieces: list[bytes] = []
    size = 0
    for chunk in body:
        if isinstance(chunk, Pause):
            yield chunk
            continue
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = b"".join([*pieces, chunk[start:end]]) if pieces else chunk[start:end]
            pieces, size = [], 0
            start = end + 1
            if max_line_bytes is not None and len(line) > max_line_bytes:
                raise EventTooLargeError(max_line_bytes)
            if line.strip():
                yield orjson.loads(line)
        if start < len(chunk):
            pieces.append(chunk[start:])
            size += len(chunk) - start
            if max_line_bytes is not None and size > max_line_bytes:
                raise EventTooLargeError(max_line_bytes)
    line = b"".join(pieces)
    if line.strip():
        yield orjson.loads(line)
