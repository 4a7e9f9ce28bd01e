"""The error tree: statuses and types, the envelope with secrets masked, frames and transport classes."""

from __future__ import annotations

import pytest

from app.errors import (
    TRANSPORT_ERRORS,
    CircuitOpenError,
    ConnectFailedError,
    ConnectionBrokenError,
    ConnectRefusedError,
    ConnectTimeoutError,
    LynkrError,
    PromptTooLongError,
    ReadTimeoutError,
    UpstreamError,
    error_for_event,
    error_type_for_status,
)
from app.logging import configure_logging


@pytest.fixture(autouse=True)
def _secrets() -> None:
    configure_logging("info", ["canary-0123456789"])


def test_statuses_and_types_of_the_transport_classes() -> None:
    assert (ConnectRefusedError("x").status, ConnectRefusedError("x").error_type) == (502, "api_error")
    assert (ConnectTimeoutError("x").status, ConnectTimeoutError("x").error_type) == (504, "timeout_error")
    assert (ReadTimeoutError("x").status, ReadTimeoutError("x").error_type) == (504, "timeout_error")
    assert (ConnectionBrokenError("x").status, CircuitOpenError("x").status) == (502, 503)
    assert isinstance(ConnectTimeoutError("x"), ConnectFailedError)
    assert all(issubclass(kind, UpstreamError) for kind in TRANSPORT_ERRORS)
    assert not isinstance(CircuitOpenError("x"), TRANSPORT_ERRORS)


def test_the_envelope_masks_configured_secrets_and_credentials() -> None:
    error = LynkrError("bad key canary-0123456789 at https://u:p@host/x", status=401,
                       error_type="authentication_error")
    assert error.envelope("req_1") == {"type": "error", "request_id": "req_1", "error": {
        "type": "authentication_error", "message": "bad key [REDACTED] at https://[REDACTED]@host/x"}}
    assert error.message.startswith("bad key canary-")  # the operator's copy is the log's to mask


def test_an_upstream_body_passes_through_with_secrets_masked() -> None:
    body = {"type": "error", "error": {"type": "authentication_error", "message": "key canary-0123456789"}}
    assert LynkrError("x", body=body).envelope("req_2") == {
        "type": "error", "error": {"type": "authentication_error", "message": "key [REDACTED]"}}


@pytest.mark.parametrize(("frame", "status", "error_type"), [
    ({"type": "overloaded_error", "message": "busy"}, 529, "overloaded_error"),
    ({"type": "rate_limit_error", "message": "slow"}, 429, "rate_limit_error"),
    ({"type": "api_error", "message": "boom"}, 502, "api_error"),
    ({"type": "weird_error"}, 502, "weird_error"),
    (None, 502, "api_error"),
])
def test_an_error_frame_becomes_the_error_it_stands_for(frame: object, status: int, error_type: str) -> None:
    error = error_for_event(frame)
    assert isinstance(error, UpstreamError)
    assert (error.status, error.error_type) == (status, error_type)


def test_prompt_too_long_keeps_claude_codes_wording() -> None:
    assert PromptTooLongError(200_001, 200_000).message == "prompt is too long: 200001 tokens > 200000 maximum"
    assert error_type_for_status(418) == "invalid_request_error"
    assert error_type_for_status(599) == "api_error"
