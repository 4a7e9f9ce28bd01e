"""MCP servers' tools as Lynkr tools: ``mcp_<server>_<tool>``, ``workspace_mcp_servers``, ``workspace_mcp_call``.

:func:`mcp_tools` is a tool provider (see :mod:`app.tools.registry`): asked on every request, it
answers from the servers' current state without waiting on any of them, so a slow or dead server
never holds up a request that does not call it. Only ready servers' tools are offered; a call to
one that is starting waits for it up to ``MCP_CALL_TIMEOUT_MS``, and one to a failed server
answers at once with why.

Names follow the providers' rule ``^[a-zA-Z0-9_-]{1,64}$``: other characters become ``_``, and
a name that would be longer is cut and given a short hash, so two tools never share one. The
Tool keeps the server id and the tool's own name, so the call goes back exactly.
``POLICY_DISALLOWED_TOOLS`` may name any of these; ``MCP_TOOL_ALLOWLIST`` (``server/tool``,
``server/*``) narrows what a server offers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

from app.config import Config
from app.mcp.client import McpError, ServerTool
from app.mcp.content import map_result
from app.mcp.supervisor import ServerStatus, Supervisor, supervisor_for
from app.tools.base import Tool, ToolContext, ToolError, ToolOutput, str_arg, truncate

PREFIX = "mcp_"
MAX_NAME = 64
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def tool_name(server_id: str, tool: str) -> str:
    """The name ``tool`` of ``server_id`` is offered under: ``mcp_<server>_<tool>``, provider-safe."""
    name = _UNSAFE.sub("_", f"{PREFIX}{server_id}_{tool}")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{server_id}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}_{digest}"


def allowed(config: Config, server_id: str, tool: str) -> bool:
    """Whether ``MCP_TOOL_ALLOWLIST`` and ``POLICY_DISALLOWED_TOOLS`` let ``tool`` of ``server_id`` run."""
    if tool_name(server_id, tool) in config.policy_disallowed_tools:
        return False
    entries = [entry.split("/", 1) for entry in config.mcp_tool_allowlist if "/" in entry]
    listed = [name for server, name in entries if server == server_id]
    return not listed or "*" in listed or tool in listed


def mcp_tools(config: Config) -> Mapping[str, Tool]:
    """The tools the MCP servers offer right now (none when no server is declared)."""
    supervisor = supervisor_for(config)
    if not supervisor.servers:
        return {}
    supervisor.start_all()  # MCP_START=lazy: the first request starts them, in the background
    tools: dict[str, Tool] = {SERVERS_TOOL.name: SERVERS_TOOL, CALL_TOOL.name: CALL_TOOL}
    for status in supervisor.statuses():
        for tool in status.tools:
            if not allowed(config, status.id, tool.name):
                continue
            name = tool_name(status.id, tool.name)
            if name not in tools:  # two names cleaned to the same one: the first keeps it
                tools[name] = _offered(status.id, tool, name)
    return tools


def call(config: Config, server_id: str, tool: str, arguments: dict[str, Any],
         cancelled: threading.Event | None = None) -> ToolOutput:
    """Run ``tool`` on ``server_id`` for the model; :class:`ToolError` with the reason when it cannot."""
    server = supervisor_for(config).servers.get(server_id)
    if server is None:
        raise ToolError(f"no MCP server '{server_id}' is configured")
    if not allowed(config, server_id, tool):
        raise ToolError(f"tool '{tool}' of MCP server '{server_id}' is not allowed by the gateway's policy "
                        "(MCP_TOOL_ALLOWLIST / POLICY_DISALLOWED_TOOLS)")
    timeout_s = config.mcp_call_timeout_ms / 1000
    try:
        result = server.ready_client(timeout_s).call_tool(tool, arguments, timeout_s, cancelled)
    except McpError as exc:
        raise ToolError(str(exc)) from exc
    mapped = map_result(result)
    if mapped.is_error:
        raise ToolError(mapped.text() or f"tool '{tool}' of MCP server '{server_id}' reported an error")
    if all(block["type"] == "text" for block in mapped.blocks):
        return mapped.text()
    limit = config.tool_result_max_chars
    return [{**block, "text": truncate(block["text"], limit)} if block["type"] == "text" else block
            for block in mapped.blocks]


def _offered(server_id: str, tool: ServerTool, name: str) -> Tool:
    schema = dict(tool.input_schema)
    schema.setdefault("type", "object")
    description = f"[MCP server {server_id}] {tool.description}".strip()
    return Tool(name=name, description=description, input_schema=schema,
                run=partial(_run_named, server_id, tool.name))


def _run_named(server_id: str, tool: str, ctx: ToolContext, args: dict[str, Any]) -> ToolOutput:
    return call(ctx.config, server_id, tool, args, ctx.cancelled)


def run_servers(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """Every configured MCP server: state, protocol version and tools (with their offered names)."""
    supervisor = supervisor_for(ctx.config)
    listing = describe_supervisor(supervisor, ctx.config)
    problems = [str(problem) for problem in supervisor.problems]
    return json.dumps({"servers": listing, **({"skipped_manifests": problems} if problems else {})}, indent=2)


def run_call(ctx: ToolContext, args: Mapping[str, Any]) -> ToolOutput:
    """``{server, tool, arguments}``, or the Node Lynkr's ``{server|server_id, method, params}``."""
    server_id = str_arg(args, "server", "server_id", required=True) or ""
    method = str_arg(args, "method")
    if method is None:
        tool = str_arg(args, "tool", "name", required=True) or ""
        return call(ctx.config, server_id, tool, _arguments(args.get("arguments")), ctx.cancelled)
    params = args.get("params") or {}
    if not isinstance(params, dict):
        raise ToolError("argument 'params' must be an object")
    if method == "tools/call":
        tool = str_arg(params, "name", required=True) or ""
        return call(ctx.config, server_id, tool, _arguments(params.get("arguments")), ctx.cancelled)
    if method == "tools/list":
        return _list(ctx, server_id)
    raise ToolError(f"method '{method}' is not supported here: use tools/call or tools/list")


def _list(ctx: ToolContext, server_id: str) -> str:
    server = supervisor_for(ctx.config).servers.get(server_id)
    if server is None:
        raise ToolError(f"no MCP server '{server_id}' is configured")
    try:
        server.ready_client(ctx.config.mcp_call_timeout_ms / 1000)
    except McpError as exc:
        raise ToolError(str(exc)) from exc
    tools = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema}
             for t in server.status().tools if allowed(ctx.config, server_id, t.name)]
    return json.dumps({"tools": tools}, indent=2)


def _describe(status: ServerStatus, config: Config) -> dict[str, Any]:
    described: dict[str, Any] = {"id": status.id, "transport": status.transport, "state": status.state}
    if status.reason:
        described["reason"] = status.reason
    if status.protocol_version:
        described["protocol_version"] = status.protocol_version
    described["tools"] = [{"name": tool.name, "offered_as": tool_name(status.id, tool.name),
                           "description": tool.description}
                          for tool in status.tools if allowed(config, status.id, tool.name)]
    return described


def _arguments(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # some models send the arguments as a JSON string
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ToolError("argument 'arguments' must be a JSON object") from exc
    if not isinstance(value, dict):
        raise ToolError("argument 'arguments' must be an object")
    return value


def describe_supervisor(supervisor: Supervisor, config: Config) -> list[dict[str, Any]]:
    """Each server described as ``workspace_mcp_servers`` and ``lynkr mcp list`` show it."""
    return [_describe(status, config) for status in supervisor.statuses()]


SERVERS_TOOL = Tool(
    name="workspace_mcp_servers",
    description=("List the MCP servers this gateway runs: each one's state (starting, ready, failed and why, "
                 "restarting), protocol version and tools, with the names they are offered under."),
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    run=run_servers,
)

CALL_TOOL = Tool(
    name="workspace_mcp_call",
    description=("Call a tool of one of the gateway's MCP servers: {server, tool, arguments}. Also accepts "
                 "{server, method: 'tools/call', params: {name, arguments}} and {server, method: 'tools/list'}."),
    input_schema={
        "type": "object",
        "properties": {
            "server": {"type": "string", "description": "The server id (see workspace_mcp_servers)."},
            "tool": {"type": "string", "description": "The tool's name on that server."},
            "arguments": {"type": "object", "description": "The tool's arguments."},
            "server_id": {"type": "string", "description": "Same as server."},
            "method": {"type": "string", "enum": ["tools/call", "tools/list"]},
            "params": {"type": "object", "description": "For method tools/call: {name, arguments}."},
        },
    },
    run=run_call,
)
