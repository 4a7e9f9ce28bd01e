"""MCP servers under the real ``lynkr serve``: the npm filesystem server found through a ``.mcp.json``
and read through ``/v1/messages`` by a scripted model, and no server process left after SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, json_lines, message_body, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import Behaviour, FakeAnthropicUpstream, JsonReply, RecordedRequest
from tests.servers import demo_mcp

pytestmark = pytest.mark.slow

FILESYSTEM_SERVER = (Path(__file__).parent / "node_modules" / "@modelcontextprotocol" / "server-filesystem" / "dist"
                     / "index.js")
READ_ID = "toolu_e2e_mcp_read_0001"
LEAKED = "sk-live-0123456789abcdef"  # credential-shaped: the log must redact it


class ReadFileModel:
    """Asks for the file through the MCP tool, then repeats what the tool returned."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[Any] = []

    def __call__(self, request: RecordedRequest) -> Behaviour:
        body: Any = request.body
        last = body["messages"][-1]
        content = last["content"] if isinstance(last["content"], list) else []
        results = [b for b in content if b.get("type") == "tool_result" and b.get("tool_use_id") == READ_ID]
        if results:
            self.results.append(results[0])
            return JsonReply(ev.message([ev.text_block(f"The file says: {results[0]['content']}")]))
        return JsonReply(ev.message([ev.tool_use_block("mcp_fs_read_text_file", {"path": str(self.path)}, READ_ID)],
                                    stop_reason="tool_use"))


def wait_ready(gateway: Gateway, server: str, workers: int) -> None:
    ready = f"MCP server {server} ready"
    if not wait_until(lambda: gateway.log_text().count(ready) >= workers, timeout=60, interval=0.2):
        pytest.fail(f"MCP server {server} did not start in every worker:\n{gateway.log_text()}")


def test_a_file_is_read_through_the_npm_filesystem_server(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, tmp_path: Path) -> None:
    assert FILESYSTEM_SERVER.is_file(), "run: npm ci --prefix tests/e2e"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    note = workspace / "notes.txt"
    note.write_text("hello from the workspace\n")
    manifests = tmp_path / "mcp"
    manifests.mkdir()
    (manifests / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "fs": {"command": "node", "args": [str(FILESYSTEM_SERVER), "${WORKSPACE_ROOT}"]}}}))
    mocked_upstream.responder = model = ReadFileModel(note)
    gateway = make_gateway(TOOL_EXECUTION_MODE="server", WORKSPACE_ROOT=str(workspace), WEB_CONCURRENCY="1",
                           MCP_MANIFEST_DIRS="", MCP_SERVER_MANIFEST=str(manifests / ".mcp.json"))
    wait_ready(gateway, "fs", workers=1)

    response = requests.post(gateway.url + "/v1/messages", json=message_body("Read notes.txt"),
                             headers=ANTHROPIC_HEADERS, timeout=60)

    assert response.status_code == 200, response.text
    assert response.json()["content"][-1]["text"].endswith("The file says: hello from the workspace\n")
    assert model.results == [{"type": "tool_result", "tool_use_id": READ_ID, "content": "hello from the workspace\n"}]
    offered = {tool["name"] for tool in mocked_upstream.message_requests()[0].body["tools"]}
    assert {"mcp_fs_read_text_file", "mcp_fs_list_directory", "workspace_mcp_servers"} <= offered


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: its id and command line."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found: dict[int, str] = {}
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        pending += children.get(child, [])
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_each_worker_runs_its_servers_and_none_is_left_after_sigterm(
        make_gateway: Callable[..., Gateway], tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    manifest = tmp_path / "servers.json"
    manifest.write_text(json.dumps({"servers": [
        {"id": "demo", "command": sys.executable, "args": [demo_mcp.__file__, "stdio"],
         "env": {"DEMO_STDERR": f"starting with token {LEAKED}"}}]}))
    gateway = make_gateway(TOOL_EXECUTION_MODE="server", WORKSPACE_ROOT=str(workspace), WEB_CONCURRENCY="2",
                           MCP_MANIFEST_DIRS="", MCP_SERVER_MANIFEST=str(manifest))
    wait_ready(gateway, "demo", workers=2)
    below = descendants(gateway.proc.pid)
    servers = [pid for pid, cmdline in below.items()
               if cmdline.startswith(sys.executable) and "demo_mcp.py stdio" in cmdline]
    assert len(servers) == 2, below

    said = [line for line in json_lines(gateway.log_text()) if line.get("mcp_server") == "demo"
            and line["message"].startswith("[demo] starting with token")]
    assert len(said) == 2  # the server's stderr, once per worker, with its id
    assert LEAKED not in gateway.log_text()

    assert gateway.stop(signal.SIGTERM) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in below), timeout=10), [
        (pid, below[pid]) for pid in below if alive(pid)]
