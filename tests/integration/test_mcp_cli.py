"""``lynkr mcp list`` and ``lynkr mcp call`` as a user runs them, against real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import demo_mcp

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def lynkr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
           "WORKSPACE_ROOT": str(tmp_path / "ws"), "MCP_MANIFEST_DIRS": str(tmp_path / "mcp"),
           "MCP_STARTUP_TIMEOUT_MS": "30000", "LOG_LEVEL": "error"}
    return subprocess.run([sys.executable, "-m", "app", "mcp", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    directory = tmp_path / "mcp"
    directory.mkdir()
    (directory / "a.json").write_text(json.dumps({"servers": [
        {"id": "demo", "command": sys.executable, "args": [demo_mcp.__file__, "stdio"]}]}))
    (directory / "b.json").write_text(json.dumps({"mcpServers": {"broken": {"command": ["not", "a", "string"]}}}))
    return directory


def test_list_prints_each_server_its_state_protocol_and_tools(tmp_path: Path, manifests: Path) -> None:
    result = lynkr(tmp_path, "list")
    assert result.stdout.splitlines() == [
        f"skipped manifest: {manifests / 'b.json'}: mcpServers.broken.command: must be a string",
        "demo (stdio): ready, MCP 2025-11-25, 9 tools",
        "  mcp_demo_echo  Echo the text back.",
        "  mcp_demo_pixel  A 1x1 red PNG.",
        "  mcp_demo_fail  Always fails.",
        "  mcp_demo_slow  Sleep, then answer; writes marker_path if cancelled first.",
        "  mcp_demo_crash  Exit the process at once.",
        "  mcp_demo_env  The value of an environment variable, or <unset>.",
        "  mcp_demo_write  Write text to a file.",
        "  mcp_demo_connect  Open a TCP connection to 127.0.0.1:port.",
        "  mcp_demo_grow  Add the tool 'late' and tell the client the list changed.",
    ]
    assert result.returncode == 1  # a manifest was skipped


def test_call_prints_the_result_or_the_error(tmp_path: Path, manifests: Path) -> None:
    called = lynkr(tmp_path, "call", "demo", "echo", '{"text": "from the terminal"}')
    assert (called.returncode, called.stdout) == (0, "echo: from the terminal\n")
    failed = lynkr(tmp_path, "call", "demo", "fail", '{"reason": "here"}')
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == "error: Error executing tool fail: failed here"
    unknown = lynkr(tmp_path, "call", "nope", "echo")
    assert (unknown.returncode, unknown.stderr.splitlines()[-1]) == (1, "error: no MCP server 'nope' is configured")
    bad_json = lynkr(tmp_path, "call", "demo", "echo", "{text")
    assert bad_json.returncode == 2
