"""Session ids come from headers or Claude Code's metadata.user_id, in both its forms."""

from __future__ import annotations

import pytest

from app.storage.sessions import session_id_from

UUID = "21306f11-6023-44fb-a76e-4948a15f1809"


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({"x-session-id": "abc-1"}, {}, "abc-1"),
    ({"x-claude-code-session-id": UUID}, {}, UUID),
    ({}, {"metadata": {"user_id": f"user_abc123_account__session_{UUID}"}}, UUID),
    ({}, {"metadata": {"user_id": f'{{"device_id":"d","account_uuid":"","session_id":"{UUID}"}}'}}, UUID),
    ({}, {"metadata": {"user_id": "someone"}}, None),
    ({}, {"metadata": {"user_id": "{not json"}}, None),
    ({"x-session-id": "bad id with spaces"}, {}, None),
    ({}, {}, None),
])
def test_session_id_sources(headers: dict, body: dict, expected: str | None) -> None:
    assert session_id_from(headers, body) == expected
