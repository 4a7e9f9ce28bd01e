"""Behaviour shared by providers whose upstream speaks Anthropic Messages.

Headers are an allow-list: upstream gets ``anthropic-version``, the ``anthropic-beta`` flags
its host profile accepts, the content type and the provider's auth — never the client's Host,
Content-Length, Accept-Encoding or ``X-Stainless-*``. An upstream's own Anthropic error body
passes through unchanged, since Claude Code's retry logic reads its wording.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.anthropic.events import StreamBuilder
from app.errors import LynkrError, error_type_for_status
from app.providers.base import CallContext, Provider, UpstreamRequest, anthropic_error_body
from app.providers.formats import anthropic as anthropic_format

DEFAULT_VERSION = "2023-06-01"
USER_AGENT = "lynkr/0.1"


class AnthropicFormatProvider(Provider):
    """A provider whose upstream takes Anthropic Messages requests."""

    host: ClassVar[str]

    def version(self, ctx: CallContext) -> str:
        """The ``anthropic-version`` header to send."""
        return ctx.anthropic_version or DEFAULT_VERSION

    def convert_request(self, request: dict[str, Any], ctx: CallContext, *, stream: bool) -> UpstreamRequest:
        """Apply the host profile and build headers; a clamped ``max_tokens`` is logged."""
        model = self.model_for(ctx)
        profile = self.capabilities.host(self.host)
        caps = self.caps(model)
        self.note_clamp(request, model, caps)
        body = anthropic_format.to_upstream(request, model=model, profile=profile, caps=caps)
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
        return UpstreamRequest(self.url(), headers, body, model)

    def message_from(self, body: dict[str, Any], request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The upstream's message, echoing the client's model name."""
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
