"""``lynkr mcp list`` and ``lynkr mcp call`` in process, against a tiny stdio MCP server and an unreachable one."""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.mcp import supervisor as supervisor_module
from app.mcp.commands import call_tool, list_servers
from app.mcp.supervisor import shutdown

TINY_SERVER = """
import json, sys
TOOLS = [{"name": "echo", "description": "Echo the text back.\\nSecond line.",
          "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
         {"name": "dot", "inputSchema": {"type": "object"}}]
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message or "method" not in message:
        continue
    method, params = message["method"], message.get("params") or {}
    if method == "initialize":
        result = {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and params["name"] == "echo":
        result = {"content": [{"type": "text", "text": "echo: " + params["arguments"].get("text", "")}]}
    elif method == "tools/call" and params["name"] == "dot":
        result = {"content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"},
                              {"type": "text", "text": "a dot"}]}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "no tool " + params["name"]}], "isError": True}
    else:
        result = {}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
"""


@pytest.fixture(autouse=True)
def no_current(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(supervisor_module, "_current", None)
    yield
    shutdown()


def free_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"


def configured(tmp_path: Path, **manifests: Any) -> Config:
    """A config reading ``manifests`` (file name → JSON document) from a directory of its own."""
    directory = tmp_path / "mcp"
    directory.mkdir()
    for name, document in manifests.items():
        (directory / f"{name}.json").write_text(json.dumps(document))
    return Config(mcp_manifest_dirs=str(directory), sandbox_enabled=False, workspace_root=str(tmp_path),
                  mcp_start="lazy", mcp_startup_timeout_ms=10000, mcp_call_timeout_ms=10000)


def tiny(tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "tiny_mcp.py"
    script.write_text(TINY_SERVER)
    return {"mcpServers": {"tiny": {"command": sys.executable, "args": [str(script)]}}}


def test_list_with_no_manifests_says_where_servers_are_declared(tmp_path: Path) -> None:
    out = io.StringIO()
    assert list_servers(configured(tmp_path), out) == 0
    assert out.getvalue() == "no MCP servers are declared (MCP_MANIFEST_DIRS, MCP_SERVER_MANIFEST)\n"


def test_list_prints_ready_and_failed_servers_and_skipped_manifests(tmp_path: Path) -> None:
    url = free_url()
    config = configured(tmp_path, a=tiny(tmp_path), b={"mcpServers": {"broken": {"command": ["not", "a", "string"]}}},
                        c={"mcpServers": {"web": {"url": url}}})
    out = io.StringIO()
    assert list_servers(config, out) == 1
    assert out.getvalue().splitlines() == [
        f"skipped manifest: {tmp_path / 'mcp' / 'b.json'}: mcpServers.broken.command: must be a string",
        "tiny (stdio): ready, MCP 2025-11-25, 2 tools",
        "  mcp_tiny_echo  Echo the text back.",
        "  mcp_tiny_dot  ",
        f"web (http): failed — the handshake failed: MCP server 'web': could not reach {url}: ConnectionError; "
        "retrying in 1 s",
    ]
    assert [(s.id, s.state) for s in supervisor_module._current[1].statuses()] == [  # type: ignore[index]
        ("tiny", "stopped"), ("web", "stopped")]


def test_list_exits_0_when_every_server_is_ready_and_shows_only_allowed_tools(tmp_path: Path) -> None:
    config = configured(tmp_path, a=tiny(tmp_path))
    config = replace(config, mcp_tool_allowlist=("tiny/dot",))
    out = io.StringIO()
    assert list_servers(config, out) == 0
    assert out.getvalue().splitlines() == ["tiny (stdio): ready, MCP 2025-11-25, 1 tools", "  mcp_tiny_dot  "]


def test_call_prints_a_text_result(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert call_tool(configured(tmp_path, a=tiny(tmp_path)), "tiny", "echo", '{"text": "hi"}', out, err) == 0
    assert (out.getvalue(), err.getvalue()) == ("echo: hi\n", "")
    [(_, server)] = supervisor_module._current[1].servers.items()  # type: ignore[index]
    assert server.status().state == "stopped"  # the server called is stopped afterwards


def test_call_prints_other_content_as_json_blocks(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert call_tool(configured(tmp_path, a=tiny(tmp_path)), "tiny", "dot", "", out, err) == 0
    assert json.loads(out.getvalue()) == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "text", "text": "a dot"}]
    assert out.getvalue().startswith("[\n  {")  # indented for a reader


def test_call_reports_an_error_result_and_an_unknown_server_on_stderr(tmp_path: Path) -> None:
    config = configured(tmp_path, a=tiny(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert call_tool(config, "tiny", "nope", "{}", out, err) == 1
    assert (out.getvalue(), err.getvalue()) == ("", "error: no tool nope\n")
    err = io.StringIO()
    assert call_tool(config, "other", "echo", "{}", out, err) == 1
    assert err.getvalue() == "error: no MCP server 'other' is configured\n"


@pytest.mark.parametrize(("arguments", "message"), [
    ("{text", "lynkr: the arguments are not JSON: Expecting property name enclosed in double quotes: "
              "line 1 column 2 (char 1)\n"),
    ("[1, 2]", "lynkr: the arguments must be a JSON object\n"),
    ('"text"', "lynkr: the arguments must be a JSON object\n"),
])
def test_call_refuses_arguments_that_are_not_a_json_object_before_starting_anything(
        tmp_path: Path, arguments: str, message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert call_tool(configured(tmp_path, a=tiny(tmp_path)), "tiny", "echo", arguments, out, err) == 2
    assert (out.getvalue(), err.getvalue()) == ("", message)
    assert supervisor_module._current is None
