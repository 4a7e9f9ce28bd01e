"""``lynkr mcp list`` and ``lynkr mcp call``: the MCP servers as the gateway sees them, from a terminal."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TextIO

from app.config import Config
from app.mcp.supervisor import supervisor_for
from app.mcp.tools import call, describe_supervisor
from app.tools.base import ToolError


def list_servers(config: Config, out: TextIO) -> int:
    """Start every server, wait for each to be ready or fail, and print them; 1 when any is not ready."""
    supervisor = supervisor_for(config)
    supervisor.start_all()
    supervisor.settle(config.mcp_startup_timeout_ms / 1000)
    described = describe_supervisor(supervisor, config)
    for problem in supervisor.problems:
        print(f"skipped manifest: {problem}", file=out)
    if not described and not supervisor.problems:
        print("no MCP servers are declared (MCP_MANIFEST_DIRS, MCP_SERVER_MANIFEST)", file=out)
    for server in described:
        line = f"{server['id']} ({server['transport']}): {server['state']}"
        if "protocol_version" in server:
            line += f", MCP {server['protocol_version']}, {len(server['tools'])} tools"
        if "reason" in server:
            line += f" — {server['reason']}"
        print(line, file=out)
        for tool in server["tools"]:
            print(f"  {tool['offered_as']}  {tool['description'].splitlines()[0] if tool['description'] else ''}",
                  file=out)
    supervisor.stop_all()
    return 0 if all(server["state"] == "ready" for server in described) and not supervisor.problems else 1


def call_tool(config: Config, server_id: str, tool: str, arguments_json: str, out: TextIO, err: TextIO) -> int:
    """Call one tool and print its result (text, or the content blocks as JSON); 1 on an error result."""
    try:
        arguments = json.loads(arguments_json or "{}")
    except ValueError as exc:
        print(f"lynkr: the arguments are not JSON: {exc}", file=err)
        return 2
    if not isinstance(arguments, dict):
        print("lynkr: the arguments must be a JSON object", file=err)
        return 2
    config = replace(config, mcp_start="lazy")  # start only the server called
    supervisor = supervisor_for(config)
    try:
        output = call(config, server_id, tool, arguments)
    except ToolError as exc:
        print(f"error: {exc}", file=err)
        return 1
    finally:
        supervisor.stop_all()
    print(output if isinstance(output, str) else json.dumps(output, indent=2), file=out)
    return 0
