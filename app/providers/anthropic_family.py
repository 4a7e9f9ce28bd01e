"""Behaviour shared by providers whose upstream speaks Anthropic Messages.

Headers are an allow-list: upstream gets ``anthropic-version``, the ``anthropic-beta`` flags
its host profile accepts, the content type and the provider's auth — never the client's Host,
Content-Length, Accept-Encoding or ``X-Stainless-*``. An upstream's own Anthropic error body
passes through unchanged, since Claude Code's retry logic reads its wording.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.anthropic.encoded import Encoded, splice_body
from app.anthropic.events import StreamBuilder
from app.errors import LynkrError, UpstreamError, error_type_for_status
from app.providers.base import CallContext, Provider, UpstreamRequest, anthropic_error_body
from app.providers.formats import anthropic as anthropic_format

DEFAULT_VERSION = "2023-06-01"
USER_AGENT = "lynkr/0.1"
# The HTTP status of each Anthropic error type, as Anthropic's API answers it.
ERROR_TYPE_STATUSES = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}


def status_for_error_type(error_type: str) -> int:
    """The HTTP status an Anthropic error type stands for (502 for a type Anthropic does not document)."""
    return ERROR_TYPE_STATUSES.get(error_type, 502)


def _note_as_is(given: Encoded, sent: list[dict[str, Any]], aspect: str) -> None:
    """Note, for each client message sent as the very same object, that it goes as it is."""
    kept = {id(m) for m in sent}
    for message, notes in zip(given.messages, given.notes, strict=True):
        if id(message) in kept:
            notes[aspect] = True


class AnthropicFormatProvider(Provider):
    """A provider whose upstream takes Anthropic Messages requests."""

    host: ClassVar[str]
    relays_frames = True

    def version(self, ctx: CallContext) -> str:
        """The ``anthropic-version`` header to send."""
        return ctx.anthropic_version or DEFAULT_VERSION

    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        """Apply the host profile and build headers; a clamped ``max_tokens`` is logged."""
        model = self.model_for(ctx)
        profile = self.capabilities.host(self.host)
        caps = self.caps(model)
        self.note_clamp(request, model, caps)
        given = ctx.encoded  # its bytes are reused for each of its messages the body carries
        aspect = f"anthropic_as_is:{profile.deferred_tools}"  # all upstream_message reads of the profile
        as_is = {id(m) for m, notes in zip(given.messages, given.notes, strict=True) if aspect in notes} \
            if given is not None else set()
        body = anthropic_format.to_upstream(request, model=model, profile=profile, caps=caps, as_is=as_is)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": self.version(ctx),
            "user-agent": USER_AGENT,
            **self.auth_headers(),
        }
        betas = anthropic_format.filter_betas(ctx.anthropic_beta, profile)
        if betas:
            headers["anthropic-beta"] = betas
        if given is None:
            return UpstreamRequest(self.url(), headers, body, model)
        _note_as_is(given, body["messages"], aspect)
        return UpstreamRequest(self.url(), headers, body, model, splice_body(body, given.messages, given.parts))

    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The upstream's message, echoing the client's model name.

        An error envelope is an error whatever the HTTP status said (some hosts answer 200 with
        one): it gets the status its type stands for, and passes through like any other.
        """
        if not isinstance(body, dict):
            raise UpstreamError(f"{self.name} answered with JSON that is not a message.", provider=self.name)
        if body.get("type") == "error":
            error: dict[str, Any] = given if isinstance(given := body.get("error"), dict) else {}
            error_type = str(error.get("type") or "api_error")
            raise LynkrError(str(error.get("message") or f"{self.name} answered with an error."),
                             status=status_for_error_type(error_type), error_type=error_type,
                             body=body if error else None, provider=self.name)
        return anthropic_format.from_upstream(body, model=ctx.requested_model)

    def translator(self, builder: StreamBuilder, request: dict[str, Any], model: str) -> Any:
        """Relay translator."""
        return anthropic_format.StreamTranslator(builder)

    def error_for(self, status: int, content: bytes, headers: dict[str, str]) -> LynkrError:
        """Anthropic error bodies pass through; anything else gets our envelope."""
        body = anthropic_error_body(content)
        if body is None:
            return super().error_for(status, content, headers)
        error = body["error"]
        return LynkrError(str(error.get("message", "")), status=status,
                          error_type=error.get("type") or error_type_for_status(status),
                          headers=headers, body=body, provider=self.name)
