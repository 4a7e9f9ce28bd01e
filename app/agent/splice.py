"""Server steps kept per session and spliced back into the next upstream request.

The client only sees the assistant message the loop showed it (progress text, the answer,
client tool calls). Claude Code resends that message in its next request; the model must see
what it really did instead. Each such message gets an *anchor* — the hash of its tool_use ids,
or of its text when it has none — under which the loop's real messages are stored. On the next
request every resent assistant message whose anchor is known is replaced by those messages,
and server tool results owed alongside client results go to the front of the next user turn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from peewee import IntegrityError, Node, Query

from app.anthropic.encoded import Notes, noted
from app.logging import get_logger
from app.storage.db import db
from app.storage.models import AgentTrace
from app.storage.prepared import Prepared

log = get_logger("agent.splice")
_NO_ANCHOR = ""  # pads a lookup: never an anchor


def _session_anchors(session_id: Node, *, shape: None) -> Query:
    return AgentTrace.select(AgentTrace.anchor).where(AgentTrace.session_id == session_id)


def _session_traces(session_id: Node, *anchors: Node, shape: None) -> Query:
    return (AgentTrace.select(AgentTrace.anchor, AgentTrace.messages, AgentTrace.results)
            .where((AgentTrace.session_id == session_id) & AgentTrace.anchor.in_(anchors)))


# Run on every request of a session in server mode: rendered once (app.storage.prepared).
_SESSION_ANCHORS = Prepared(_session_anchors)
_SESSION_TRACES = Prepared(_session_traces)


def anchor(message: dict[str, Any]) -> str | None:
    """The key of an assistant message as the client will resend it, or None if it has no content."""
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    ids = sorted(str(b.get("id")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use")
    if ids:
        basis = "ids:" + ",".join(ids)
    else:
        text = " ".join("".join(b.get("text", "") for b in blocks
                                if isinstance(b, dict) and b.get("type") == "text").split())
        if not text:
            return None
        basis = "text:" + text
    return hashlib.sha256(basis.encode()).hexdigest()


def save_trace(session_id: str, shown: dict[str, Any], messages: list[dict[str, Any]],
               results: list[dict[str, Any]]) -> None:
    """Keep the real ``messages`` behind the ``shown`` assistant message of ``session_id``."""
    key = anchor(shown)
    if key is None:
        return
    try:
        with db.connection_context():
            AgentTrace.delete().where((AgentTrace.session_id == session_id) & (AgentTrace.anchor == key)).execute()
            AgentTrace.create(session_id=session_id, anchor=key, messages=orjson.dumps(messages).decode(),
                              results=orjson.dumps(results).decode())
    except IntegrityError:
        log.info("agent trace for session %s was stored by a concurrent request", session_id)


def splice(session_id: str | None, messages: list[dict[str, Any]],
           notes: Sequence[Notes] | None = None) -> list[dict[str, Any]]:
    """``messages`` with every known assistant message replaced by the steps behind it.

    ``notes`` (one per message, :class:`~app.anthropic.encoded.Encoded`) keep each message's
    anchor, so a resent history is not hashed again. The session's stored anchors are read first
    (its index covers them) and whole traces only for the messages that have one: a long
    conversation costs one small query, not a lookup of every message it ever showed.
    """
    if not session_id:
        return messages
    anchors = {i: noted(notes[i], "anchor", anchor, m) if notes is not None else anchor(m)
               for i, m in enumerate(messages) if m.get("role") == "assistant"}
    wanted = {a for a in anchors.values() if a}
    if not wanted:
        return messages
    with db.connection_context():
        found = wanted & {key for (key,) in _SESSION_ANCHORS.execute(db.obj, [session_id])}
        if not found:
            return messages
        # Padded to a power of two, so a session's lookups reuse a few rendered queries.
        padded = [*found, *[_NO_ANCHOR] * ((1 << (len(found) - 1).bit_length()) - len(found))]
        rows = _SESSION_TRACES.execute(db.obj, [session_id, *padded])
        traces = {key: (steps, results) for key, steps, results in rows}
    out: list[dict[str, Any]] = []
    owed: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        trace = traces.get(anchors.get(i) or "")
        if trace is not None:
            out.extend(orjson.loads(trace[0]))
            owed = orjson.loads(trace[1])
            continue
        if owed and message.get("role") == "user":
            message = {**message, "content": owed + _blocks(message.get("content"))}
        owed = []
        out.append(message)
    return out


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content or [])
