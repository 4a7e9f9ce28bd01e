"""Runs the server tool calls of one model step and turns them into ``tool_result`` blocks.

A tool that refuses (``ToolError``, a refused path) or fails in any other way gives the model
an ``is_error`` result — never a 500. Each run is kept per (session, API key, tool_use id): when the same
id comes back within ``POLICY_TOOL_DEDUP_WINDOW_MS`` (a client retrying a request), the stored
result is reused and the tool does not run twice.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson
from peewee import Expression, IntegrityError

from app.logging import get_logger
from app.storage.db import db
from app.storage.models import ToolExecution, utcnow
from app.tools.base import Tool, ToolContext, ToolError, ToolOutput, truncate

log = get_logger("agent.tools")


def run_call(call: dict[str, Any], tool: Tool | None, ctx: ToolContext) -> dict[str, Any]:
    """The ``tool_result`` block for one ``tool_use`` block the model sent."""
    call_id = str(call.get("id") or "")
    stored = _stored(ctx, call_id)
    if stored is not None:
        return stored
    started = time.perf_counter()
    output, is_error = _execute(call, tool, ctx)
    result = tool_result(call_id, output, is_error, ctx.config.tool_result_max_chars)
    _store(ctx, call, result, round((time.perf_counter() - started) * 1000, 2))
    return result


def tool_result(call_id: str, output: ToolOutput, is_error: bool, max_chars: int) -> dict[str, Any]:
    """A ``tool_result`` block, its text cut to ``max_chars``."""
    content: ToolOutput = truncate(output, max_chars) if isinstance(output, str) else output
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block


def _execute(call: dict[str, Any], tool: Tool | None, ctx: ToolContext) -> tuple[ToolOutput, bool]:
    name = call.get("name")
    if tool is None:
        return f"Tool '{name}' is not available on this gateway.", True
    if name in ctx.config.policy_disallowed_tools:
        return f"Tool '{name}' is disallowed by the gateway's policy (POLICY_DISALLOWED_TOOLS).", True
    args = call.get("input")
    if not isinstance(args, dict):
        return f"Tool '{name}' needs its arguments as a JSON object.", True
    try:
        return tool.run(ctx, args), False
    except ToolError as exc:
        return str(exc), True
    except Exception:  # a tool bug must reach the model as an error result, not crash the turn
        log.exception("tool %s failed", name, extra={"tool": name})
        return f"Tool '{name}' failed with an internal error; the gateway's log has the details.", True


def _stored(ctx: ToolContext, call_id: str) -> dict[str, Any] | None:
    if not ctx.session_id or not call_id or ctx.config.policy_tool_dedup_window_ms <= 0:
        return None
    since = utcnow() - timedelta(milliseconds=ctx.config.policy_tool_dedup_window_ms)
    with db.connection_context():
        row = (ToolExecution.select()
               .where(_this_run(ctx, call_id) & (ToolExecution.created_at >= since))
               .first())
    return orjson.loads(row.result) if row is not None else None


def _this_run(ctx: ToolContext, call_id: str) -> Expression:
    """The stored run of ``call_id`` in this session, by this request's key (another key's is not reused)."""
    return ((ToolExecution.session_id == ctx.session_id) & (ToolExecution.owner == (ctx.api_key or ""))
            & (ToolExecution.tool_use_id == call_id))


def _store(ctx: ToolContext, call: dict[str, Any], result: dict[str, Any], duration_ms: float) -> None:
    if not ctx.session_id or not call.get("id"):
        return
    try:
        with db.connection_context():
            ToolExecution.delete().where(_this_run(ctx, str(call["id"]))).execute()
            ToolExecution.create(session_id=ctx.session_id, owner=ctx.api_key or "", tool_use_id=str(call["id"]),
                                 request_id=ctx.request_id, name=str(call.get("name")),
                                 input=orjson.dumps(call.get("input")).decode(), result=orjson.dumps(result).decode(),
                                 is_error=bool(result.get("is_error")), duration_ms=duration_ms)
    except IntegrityError:
        log.info("tool run %s was stored by a concurrent request", call.get("id"))
