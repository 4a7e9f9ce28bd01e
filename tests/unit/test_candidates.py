"""The candidate chain's rules: what a client gets past the retry budget, and which failures may
hand over to the next candidate. (The chain itself runs in the orchestrator's and the resilience
flow's tests, through real providers.)"""

from __future__ import annotations

import pytest

from app.candidates import fallback_reason, past_budget
from app.errors import (
    BillingError,
    CircuitOpenError,
    ConnectionBrokenError,
    ConnectRefusedError,
    ConnectTimeoutError,
    InvalidRequestError,
    LynkrError,
    OverloadedError,
    ProviderNotConfiguredError,
    RateLimitError,
    ReadTimeoutError,
    UpstreamError,
    UpstreamTimeoutError,
)


@pytest.mark.parametrize(("error", "status", "error_type", "kind"), [
    (RateLimitError("Slow down.", body={"type": "error", "error": {"type": "rate_limit_error", "message": "Slow"}}),
     429, "rate_limit_error", LynkrError),
    (LynkrError("Overloaded.", status=529, error_type="overloaded_error"), 529, "overloaded_error", LynkrError),
    (LynkrError("Bad gateway.", status=502), 529, "overloaded_error", OverloadedError),
    (LynkrError("Unavailable.", status=503, error_type="overloaded_error"), 529, "overloaded_error", OverloadedError),
    (ConnectRefusedError("Refused.", provider="databricks"), 529, "overloaded_error", OverloadedError),
    (ReadTimeoutError("Silent.", provider="databricks"), 529, "overloaded_error", OverloadedError),
])
def test_past_budget(error: LynkrError, status: int, error_type: str, kind: type[LynkrError]) -> None:
    error.headers["x-upstream"] = "kept"

    answer = past_budget(error, 2.2)

    assert type(answer) is kind
    assert (answer.status, answer.error_type) == (status, error_type)
    assert answer.headers == {"x-upstream": "kept", "retry-after": "3"}
    assert answer.provider == error.provider
    if kind is LynkrError:
        assert (answer.message, answer.body) == (error.message, error.body)
    else:
        assert answer.message == (f"{error.message} Retrying it would pass the retry budget "
                                  "(API_RETRY_BUDGET_MS); retry later.")


@pytest.mark.parametrize(("error", "reason"), [
    (CircuitOpenError("Open."), "circuit_breaker"),
    (ProviderNotConfiguredError("openai", ["OPENAI_API_KEY"]), "not_configured"),
    (ConnectRefusedError("Refused."), "service_unavailable"),
    (ConnectTimeoutError("No connection in time."), "service_unavailable"),
    (ReadTimeoutError("Silent."), "timeout"),
    (UpstreamTimeoutError("Too slow."), "timeout"),
    (LynkrError("Gateway timeout.", status=504), "timeout"),
    (RateLimitError("Slow down."), "rate_limited"),
    (LynkrError("Unavailable.", status=503), "service_unavailable"),
    (OverloadedError("Overloaded."), "service_unavailable"),
    (UpstreamError("Bad gateway."), "error"),
    (ConnectionBrokenError("Reset."), "error"),
    (LynkrError("Internal."), "error"),
    (InvalidRequestError("Bad request."), None),
    (BillingError("Budget spent."), None),
    (LynkrError("Forbidden.", status=403), None),
])
def test_fallback_reason(error: LynkrError, reason: str | None) -> None:
    assert fallback_reason(error) == reason
