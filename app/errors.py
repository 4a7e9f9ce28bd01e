"""The error tree and the one Anthropic error envelope.

::

    LynkrError (500 api_error)
    ├── InvalidRequestError (400 invalid_request_error)
    │   └── PromptTooLongError  "prompt is too long: N tokens > M maximum"
    ├── AuthenticationError (401)     ├── BillingError (402)
    ├── PermissionDeniedError (403)   ├── NotFoundError (404)
    ├── RequestTooLargeError (413)    ├── RateLimitError (429)
    ├── RequestTimeoutError (408: the client's body did not arrive in time)
    ├── UpstreamError (502 api_error, names the provider)
    │   ├── ConnectFailedError        no connection (DNS, TLS, unreachable)
    │   │   ├── ConnectRefusedError   the port refused it
    │   │   └── ConnectTimeoutError   (504 timeout_error) no connection in time
    │   ├── ReadTimeoutError          (504 timeout_error) connected, then silence
    │   └── ConnectionBrokenError     reset, FIN or a protocol error mid-answer
    ├── ProviderNotConfiguredError (500, not retryable: names the variables to set)
    ├── OverloadedError (529 or 503 overloaded_error, with Retry-After)
    │   └── CircuitOpenError (503) the provider's breaker is open
    └── UpstreamTimeoutError (504 timeout_error)

The transport classes (:data:`TRANSPORT_ERRORS`) are raised only at the provider boundary
(:mod:`app.providers._http`), for a request and for a body or stream that breaks off, so every
caller — the orchestrator's retries, the stream response, the agent loop — catches them by type.

Every error a client sees is ``{"type":"error","error":{"type":…,"message":…},"request_id":…}``.
An Anthropic-format upstream's own error body passes through unchanged (``body``), because
Claude Code's retry logic reads its wording.
"""

from __future__ import annotations

from typing import Any

from app.logging import redact, redact_value

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """The Anthropic error type for an HTTP status."""
    if status in STATUS_TYPES:
        return STATUS_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


class LynkrError(Exception):
    """Base of every error rendered to a client."""

    status = 500
    error_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.headers = dict(headers or {})
        self.body = body
        self.provider = provider
        # Whether the provider's circuit breaker has already heard this failure (the candidate chain
        # gives one verdict per request); one that broke an open stream has not.
        self.heard_by_breaker = False
        # The upstream's own retry-after, unrounded, for the retry decision (headers hold the
        # client's copy in whole seconds).
        self.retry_after: str | None = None

    @property
    def client_message(self) -> str:
        """The message as a client may see it: configured secrets and credentials masked (an
        upstream may echo the key it was sent)."""
        return redact(self.message)

    def envelope(self, request_id: str | None) -> dict[str, Any]:
        """The Anthropic error body, or the upstream's own Anthropic error body, secrets masked."""
        if self.body is not None:
            body: dict[str, Any] = redact_value(self.body)
            return body
        return error_envelope(self.error_type, self.client_message, request_id)


class InvalidRequestError(LynkrError):
    status, error_type = 400, "invalid_request_error"


class PromptTooLongError(InvalidRequestError):
    """Context overflow, in the only wording on which Claude Code compacts."""

    def __init__(self, tokens: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(f"prompt is too long: {tokens} tokens > {maximum} maximum", **kwargs)


class AuthenticationError(LynkrError):
    status, error_type = 401, "authentication_error"


class BillingError(LynkrError):
    status, error_type = 402, "billing_error"


class PermissionDeniedError(LynkrError):
    status, error_type = 403, "permission_error"


class NotFoundError(LynkrError):
    status, error_type = 404, "not_found_error"


class RequestTooLargeError(LynkrError):
    status, error_type = 413, "request_too_large"


class RequestTimeoutError(LynkrError):
    """The client did not send its request body in time."""

    status, error_type = 408, "timeout_error"


class RateLimitError(LynkrError):
    status, error_type = 429, "rate_limit_error"


class UpstreamError(LynkrError):
    status, error_type = 502, "api_error"


class ProviderNotConfiguredError(LynkrError):
    """The chosen provider lacks settings. Marked not retryable so clients fail fast."""

    status, error_type = 500, "api_error"

    def __init__(self, provider: str, missing: list[str]) -> None:
        super().__init__(
            f"Provider '{provider}' is not configured: set {', '.join(missing)} "
            "(see .env.example), then restart Lynkr.",
            headers={"x-should-retry": "false"},
            provider=provider,
        )


class OverloadedError(LynkrError):
    status, error_type = 529, "overloaded_error"


class CircuitOpenError(OverloadedError):
    """The provider's circuit breaker refuses calls for now."""

    status = 503


class UpstreamTimeoutError(LynkrError):
    status, error_type = 504, "timeout_error"


class ConnectFailedError(UpstreamError):
    """No connection to the upstream: nothing was sent, so a retry cannot duplicate work."""


class ConnectRefusedError(ConnectFailedError):
    """The upstream's port refused the connection (nothing listens there)."""


class ConnectTimeoutError(ConnectFailedError):
    """No connection within the connect timeout."""

    status, error_type = 504, "timeout_error"


class ReadTimeoutError(UpstreamError):
    """Connected, then the upstream stayed silent past the read timeout."""

    status, error_type = 504, "timeout_error"


class ConnectionBrokenError(UpstreamError):
    """The connection broke mid-answer: a reset, an early FIN or a protocol error."""


TRANSPORT_ERRORS = (ConnectFailedError, ReadTimeoutError, ConnectionBrokenError)
"""The failures where no complete HTTP answer came back."""


def error_envelope(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    """``{"type":"error","error":{"type":…,"message":…},"request_id":…}``."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


_EVENT_STATUSES = {"api_error": 502, "overloaded_error": 529, "rate_limit_error": 429, "timeout_error": 504}


def error_for_event(error: Any) -> LynkrError:
    """The error an upstream's mid-stream ``error`` event stands for (its type and message kept)."""
    error = error if isinstance(error, dict) else {}
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "The upstream stream reported an error.")
    return UpstreamError(message, status=_EVENT_STATUSES.get(error_type, 502), error_type=error_type)
