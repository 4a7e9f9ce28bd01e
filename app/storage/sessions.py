"""Which session a request belongs to.

From ``x-session-id``, Claude Code's ``X-Claude-Code-Session-Id``, or ``metadata.user_id`` —
both its ``user_<hash>_account_<uuid>_session_<uuid>`` form and its newer JSON-string form
``{"device_id": …, "session_id": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

_SESSION_SUFFIX = re.compile(r"_session_([A-Za-z0-9-]{8,128})$")
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def session_id_from(headers: Mapping[str, str] | Headers, body: Mapping[str, Any]) -> str | None:
    """The session id, or None when the request carries none."""
    for name in ("x-session-id", "x-claude-code-session-id"):
        value = (headers.get(name) or "").strip()
        if _VALID.match(value):
            return value
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    return _from_user_id(user_id) if isinstance(user_id, str) else None


def _from_user_id(user_id: str) -> str | None:
    text = user_id.strip()
    if text.startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        value = parsed.get("session_id") if isinstance(parsed, dict) else None
        return value if isinstance(value, str) and _VALID.match(value) else None
    match = _SESSION_SUFFIX.search(text)
    return match.group(1) if match else None
