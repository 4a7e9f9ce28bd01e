"""The log redactor: every credential shape and every configured secret is masked."""

from __future__ import annotations

import pytest

from app.logging import Redactor


@pytest.mark.parametrize(("line", "redacted"), [
    ("Authorization: Bearer abc.def-123", "Authorization: Bearer [REDACTED]"),
    ("BEARER abc", "BEARER [REDACTED]"),
    ('{"x-api-key": "k-123456"}', '{"x-api-key": "[REDACTED]"}'),
    ("API_KEY=hunter2 rest", "API_KEY=[REDACTED] rest"),
    ("authorization=Basic dXNlcjpw rest", "authorization=[REDACTED] rest"),
    ("key sk-ant-0123456789abcdef here", "key [REDACTED] here"),
    ("token rk-ABCDEFGH12", "token [REDACTED]"),
    ("dapi0123456789abcdef0123 leaked", "[REDACTED] leaked"),
])
def test_credential_shapes_are_masked(line: str, redacted: str) -> None:
    assert Redactor()(line) == redacted


def test_configured_secrets_are_masked_wherever_they_appear() -> None:
    redactor = Redactor(["s3cr3t-value", "short"])
    assert redactor("upstream said s3cr3t-value and short.") == "upstream said [REDACTED] and [REDACTED]."


def test_a_line_without_secrets_is_unchanged() -> None:
    line = '{"level":"INFO","logger":"lynkr.access","message":"request","status":200,"path":"/v1/messages"}'
    assert Redactor(["s3cr3t-value"])(line) == line


def test_userinfo_in_any_url_is_masked_and_plain_at_signs_are_kept() -> None:
    redact = Redactor()
    assert redact("connect postgresql://lynkr:pw@db:5432/x") == "connect postgresql://[REDACTED]@db:5432/x"
    assert redact("redis://:secret@cache:6379/0 ok") == "redis://[REDACTED]@cache:6379/0 ok"
    assert redact("write to a@b.example") == "write to a@b.example"
