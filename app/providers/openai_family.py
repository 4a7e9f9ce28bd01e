"""Behaviour shared by providers whose upstream speaks OpenAI chat completions.

Translation lives in :mod:`app.providers.formats.openai_chat.convert`; this class wires it to HTTP:
headers, the ``[DONE]`` sentinel, and upstream errors — including OpenRouter's 200 bodies that
carry an ``error`` and no ``choices`` — as Anthropic errors.

The dialect a provider module sets is adjusted per call (:meth:`OpenAIChatProvider.chat_dialect`):
``SEND_USER_ID=false`` turns the ``user`` field off, and Gemini models get the schema keywords
their function declarations reject removed, whichever provider serves them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import orjson

from app.anthropic.events import Event, StreamBuilder
from app.errors import LynkrError
from app.providers.base import PROBE_MODEL, CallContext, Provider, UpstreamRequest
from app.providers.formats.openai_chat import convert as openai_chat

USER_AGENT = "lynkr/0.1"
# Gemini's function declarations take a subset of OpenAPI 3.0 (ai.google.dev/api/caching#Schema) and
# answer 400 "Unknown name ..." for these keywords Claude Code sends; its string formats are only
# "enum" and "date-time", so Claude Code's "format": "uri" is refused too.
GEMINI_REJECTED_KEYWORDS = frozenset({"$schema", "additionalProperties", "propertyNames", "exclusiveMinimum",
                                      "exclusiveMaximum", "const", "format"})


class OpenAIChatProvider(Provider):
    """A provider whose upstream takes chat-completions requests."""

    dialect: ClassVar[openai_chat.ChatDialect]

    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        """Translate to chat completions for the mapped model."""
        model = self.model_for(ctx)
        caps = self.caps(model)
        self.note_clamp(request, model, caps)
        body = openai_chat.to_upstream(request, model=model, caps=caps, dialect=self.chat_dialect(model),
                                       stream=stream)
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json",
                   "user-agent": USER_AGENT, **self.auth_headers()}
        return UpstreamRequest(self.url(), headers, body, model)

    def chat_dialect(self, model: str) -> openai_chat.ChatDialect:
        """The module's dialect for a call to ``model``: ``user`` per ``SEND_USER_ID``, Gemini's schema limits."""
        return self._gemini_dialect if "gemini" in model.lower() else self._configured_dialect

    @functools.cached_property
    def _configured_dialect(self) -> openai_chat.ChatDialect:
        if self.config.send_user_id:
            return self.dialect
        return dataclasses.replace(self.dialect, send_user=False)

    @functools.cached_property
    def _gemini_dialect(self) -> openai_chat.ChatDialect:
        dialect = self._configured_dialect
        return dataclasses.replace(
            dialect, strip_schema_keywords=dialect.strip_schema_keywords | GEMINI_REJECTED_KEYWORDS)

    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Translate the answer; an error body without choices becomes an Anthropic error."""
        model = self.model_for(ctx)
        try:
            return openai_chat.from_upstream(body, message_id="msg_" + ctx.request_id.removeprefix("req_"),
                                             model=ctx.requested_model, request=request, caps=self.caps(model))
        except openai_chat.UpstreamFormatError as exc:
            raise LynkrError(exc.message, status=exc.status, error_type=exc.error_type,
                             provider=self.name) from exc

    def translator(self, builder: StreamBuilder, request: dict[str, Any], model: str) -> Any:
        """A chat-completions stream translator that understands ``[DONE]``."""
        return _ChatStream(openai_chat.StreamTranslator(builder, request=request, caps=self.caps(model)))

    def error_for(self, status: int, content: bytes, headers: dict[str, str]) -> LynkrError:
        """Upstream errors typed by status; context overflow in Anthropic's wording."""
        try:
            body: Any = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = content.decode("utf-8", "replace")[:500]
        window = self.caps(self.upstream_model(PROBE_MODEL)).context_window
        status, error_type, message = openai_chat.upstream_error(status, body, context_window=window)
        return LynkrError(message, status=status, error_type=error_type, headers=headers, provider=self.name)



class _ChatStream:
    """Feeds parsed SSE items to the translator; ``[DONE]`` ends the stream."""

    def __init__(self, translator: openai_chat.StreamTranslator) -> None:
        self.translator = translator

    def feed(self, item: Any) -> list[Event]:
        if item == "[DONE]":
            return self.translator.done()
        return self.translator.feed(item)

    def close(self) -> list[Event]:
        return self.translator.close()


def chat_url(endpoint: str) -> str:
    """A chat-completions URL from a base (``…/v1``) or a full URL."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/chat/completions") else endpoint + "/chat/completions"
