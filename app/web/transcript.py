"""Sessions as the dashboard shows them: a list, and one transcript with tools and cost.

A transcript is the session's newest branch of turns (:func:`app.storage.transcripts.session_turns`),
the server tools the gateway ran for it (``tool_executions``: input, result, error, time) and
the requests it made (``client_requests``: model, tokens, cost), both only under its owner's key
(another key may send the same session id). Reads only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from peewee import JOIN, Expression, fn

from app.storage.models import ClientRequest, Session, ToolExecution, Turn
from app.storage.transcripts import session_turns
from app.web.overview import rows_of


@dataclass(frozen=True)
class SessionRow:
    """One line of the sessions list."""

    id: str
    owner: str
    updated_at: str
    turns: int
    requests: int
    cost_usd: float


@dataclass(frozen=True)
class ServerTool:
    """A tool the gateway ran for the session."""

    tool_use_id: str
    name: str
    input: str
    result: str
    is_error: bool
    duration_ms: float | None


@dataclass
class Transcript:
    """One session: its turns, the server tools that ran, and the requests with their cost."""

    id: str
    owner_id: str | None
    owner: str
    turns: list[dict[str, Any]]
    tools: list[ServerTool]
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        """The priced requests' cost, summed."""
        return sum(r["cost_usd"] or 0.0 for r in self.requests)

    @property
    def server_tool_ids(self) -> frozenset[str]:
        """The tool_use ids the gateway answered itself."""
        return frozenset(tool.tool_use_id for tool in self.tools)


def list_sessions(owner: str | None, names: dict[str, str], limit: int = 100) -> list[SessionRow]:
    """The newest sessions (only ``owner``'s unless None), with turn and request counts and cost."""
    turns = (Turn.select(Turn.session, fn.COUNT(Turn.chain_hash).alias("n")).group_by(Turn.session)).alias("t")
    costs = (ClientRequest.select(ClientRequest.session_id, ClientRequest.api_key,
                                  fn.COUNT(ClientRequest.request_id).alias("n"),
                                  fn.SUM(ClientRequest.cost_usd).alias("usd"))
             .group_by(ClientRequest.session_id, ClientRequest.api_key)).alias("c")
    owners_requests = ((costs.c.session_id == Session.id)
                       & ((costs.c.api_key == Session.owner) | (costs.c.api_key.is_null() & Session.owner.is_null())))
    query = (Session.select(Session.id, Session.owner, Session.updated_at, turns.c.n, costs.c.n, costs.c.usd)
             .join(turns, JOIN.LEFT_OUTER, on=(turns.c.session_id == Session.id))
             .join(costs, JOIN.LEFT_OUTER, on=owners_requests)
             .order_by(Session.updated_at.desc()).limit(limit))
    if owner is not None:
        query = query.where(Session.owner == owner)
    return [SessionRow(sid, names.get(own or "", own or "(no key)"), _iso(updated), int(n_turns or 0),
                       int(n_requests or 0), float(usd or 0.0))
            for sid, own, updated, n_turns, n_requests, usd in rows_of(query)]


def _owned_by(owner: str | None) -> Expression:
    """Requests made with the session owner's key (another key may send the same session id)."""
    return ClientRequest.api_key.is_null() if owner is None else ClientRequest.api_key == owner


def load_transcript(session_id: str, names: dict[str, str]) -> Transcript | None:
    """The transcript of ``session_id``, or None when there is no such session."""
    session = Session.get_or_none(Session.id == session_id)
    if session is None:
        return None
    tools = [ServerTool(row.tool_use_id, row.name, _pretty(row.input), _result_text(row.result), bool(row.is_error),
                        row.duration_ms)
             for row in ToolExecution.select().where((ToolExecution.session_id == session_id)
                                                     & (ToolExecution.owner == (session.owner or "")))
             .order_by(ToolExecution.created_at, ToolExecution.tool_use_id)]
    requests = [{"request_id": r.request_id, "created_at": _iso(r.created_at), "provider": r.provider,
                 "model": r.model, "status": r.status, "input_tokens": r.input_tokens,
                 "output_tokens": r.output_tokens, "cost_usd": r.cost_usd}
                for r in ClientRequest.select()
                .where((ClientRequest.session_id == session_id) & _owned_by(session.owner))
                .order_by(ClientRequest.created_at, ClientRequest.request_id)]
    return Transcript(session.id, session.owner, names.get(session.owner or "", session.owner or "(no key)"),
                      session_turns(session_id), tools, requests)


def block_text(block: dict[str, Any]) -> str:
    """A content block as text: its text, a tool call's input or a tool result's content."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return json.dumps(block.get("input", {}), indent=2, ensure_ascii=False)
    if kind == "tool_result":
        return _result_text(json.dumps(block.get("content", "")))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    return f"[{kind}]"


def _result_text(stored: str) -> str:
    try:
        value = json.loads(stored)
    except ValueError:
        return stored
    return _content_text(value)


def _content_text(value: Any) -> str:
    """A tool result's content as text: a string, content blocks, or a whole ``tool_result`` block."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") == "tool_result":
        return _content_text(value.get("content", ""))
    if isinstance(value, list):
        return "\n".join(str(b.get("text", f"[{b.get('type')}]")) if isinstance(b, dict) else str(b) for b in value)
    return json.dumps(value, indent=2, ensure_ascii=False)


def _pretty(stored: str) -> str:
    try:
        return json.dumps(json.loads(stored), indent=2, ensure_ascii=False)
    except ValueError:
        return stored


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
