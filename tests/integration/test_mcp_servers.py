"""The MCP client and supervisor against a real server (the mcp SDK's) over stdio and Streamable HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.mcp.client import PROTOCOL_VERSION, McpClient, McpError, McpTimeout, McpUnavailable
from app.mcp.content import map_result
from app.mcp.http import HttpTransport
from app.mcp.launch import transport_for
from app.mcp.manifest import ServerSpec
from app.mcp.stdio import StdioTransport
from app.mcp.supervisor import ManagedServer
from tests.servers import demo_mcp

pytestmark = pytest.mark.slow
DEMO = Path(demo_mcp.__file__)
DEMO_TOOLS = ["echo", "pixel", "fail", "slow", "crash", "env", "write", "connect", "grow"]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_http_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, str(DEMO), "http", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def accepting() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    assert wait_for(accepting, timeout=30), "the demo HTTP server did not start"
    return server


def stop_http_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = free_port()
    server = start_http_server(port)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_http_server(server)


@pytest.fixture(params=["stdio", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[McpClient]:
    if request.param == "stdio":
        transport: Any = StdioTransport("demo", [sys.executable, str(DEMO), "stdio"],
                                        env={"PATH": os.environ["PATH"]}, cwd=tmp_path)
    else:
        transport = HttpTransport("demo", request.getfixturevalue("http_url"))
    connected = McpClient("demo", transport)
    connected.connect(timeout_s=30)
    yield connected
    connected.close()


def test_the_handshake_negotiates_and_lists_the_tools(client: McpClient) -> None:
    assert client.protocol_version == PROTOCOL_VERSION
    assert client.server_info == {"name": "demo", "version": "1.0"}
    assert [tool.name for tool in client.tools] == DEMO_TOOLS
    echo = client.tools[0]
    assert echo.description == "Echo the text back."
    assert echo.input_schema["properties"]["text"]["type"] == "string"
    client.ping(timeout_s=5)


def test_text_image_and_error_results_map_to_tool_result_content(client: McpClient) -> None:
    assert map_result(client.call_tool("echo", {"text": "hi"}, 10)).blocks == [{"type": "text", "text": "echo: hi"}]
    image = map_result(client.call_tool("pixel", {}, 10))
    assert image.blocks == [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                         "data": __import__("base64").b64encode(
                                                             demo_mcp.png_pixel()).decode()}}]
    failed = map_result(client.call_tool("fail", {"reason": "on purpose"}, 10))
    assert failed.is_error is True
    assert failed.text() == "Error executing tool fail: failed on purpose"


def test_a_call_that_runs_out_of_time_is_cancelled_on_the_server(client: McpClient, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    started = time.monotonic()
    with pytest.raises(McpTimeout, match=r"did not answer tools/call within 0.5 s; the request was cancelled"):
        client.call_tool("slow", {"seconds": 30, "marker_path": str(marker)}, 0.5)
    assert time.monotonic() - started < 5
    assert wait_for(marker.exists), "the server was not told to cancel"
    assert marker.read_text() == "cancelled"
    assert map_result(client.call_tool("echo", {"text": "still here"}, 10)).text() == "echo: still here"


def test_a_changed_tool_list_is_read_again(client: McpClient) -> None:
    changed: list[list[str]] = []
    client.on_tools_changed = lambda c: changed.append([tool.name for tool in c.tools])
    assert map_result(client.call_tool("grow", {}, 10)).text() == "grown"
    assert wait_for(lambda: bool(changed))
    assert changed[0] == [*DEMO_TOOLS, "late"]
    assert "late" in [tool.name for tool in client.tools]


def test_an_unknown_server_url_is_unavailable() -> None:
    unreachable = McpClient("gone", HttpTransport("gone", f"http://127.0.0.1:{free_port()}/mcp"))
    with pytest.raises(McpUnavailable, match=r"the handshake failed: .*could not reach"):
        unreachable.connect(timeout_s=10)


# --- the supervisor, with the sandbox and environment the gateway gives a stdio server --------------------------


def demo_spec(tmp_path: Path, **fields: Any) -> ServerSpec:
    return ServerSpec(**{"id": "demo", "transport": "stdio", "source": tmp_path / "m.json",
                         "command": sys.executable, "args": (str(DEMO), "stdio"), **fields})


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def sandboxed(workspace: Path, **overrides: Any) -> Config:
    return Config(workspace_root=str(workspace), sandbox_enabled=True, mcp_startup_timeout_ms=30000, **overrides)


@pytest.fixture
def managed() -> Iterator[Callable[..., ManagedServer]]:
    servers: list[ManagedServer] = []

    def start(spec: ServerSpec, config: Config, **kwargs: Any) -> ManagedServer:
        server = ManagedServer(spec, config, **kwargs)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def call_text(server: ManagedServer, tool: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    mapped = map_result(server.ready_client(30).call_tool(tool, arguments, 30))
    return mapped.text(), mapped.is_error


def test_a_bad_command_fails_with_the_reason(managed: Callable[..., ManagedServer], workspace: Path,
                                             tmp_path: Path) -> None:
    server = managed(demo_spec(tmp_path, command="/nonexistent/mcp-server", args=()), sandboxed(workspace))
    with pytest.raises(McpUnavailable) as raised:
        server.ready_client(30)
    # Told by whichever saw it first: the closed output, or the handshake's write to the dead child.
    assert re.search(r"the handshake failed: (MCP server 'demo' stopped: )?it exited with code 1 "
                     r"\(its last words: .*execvp /nonexistent/mcp-server: No such file or directory\)",
                     str(raised.value))
    assert server.status().state in ("failed", "restarting")


def test_the_reason_a_server_died_carries_its_last_stderr_line_redacted(
        managed: Callable[..., ManagedServer], workspace: Path, tmp_path: Path) -> None:
    script = "import sys; sys.stderr.write('bad token sk-live-0123456789abcdef\\n'); sys.exit(4)"
    server = managed(demo_spec(tmp_path, args=("-c", script)), sandboxed(workspace))
    with pytest.raises(McpUnavailable) as raised:
        server.ready_client(30)
    assert "the handshake failed: it exited with code 4 (its last words: bad token " in str(raised.value)
    assert "sk-live-0123456789abcdef" not in str(raised.value)
    assert "sk-live-0123456789abcdef" not in server.status().reason


def test_a_server_that_crashes_mid_call_is_restarted(managed: Callable[..., ManagedServer], workspace: Path,
                                                      tmp_path: Path) -> None:
    server = managed(demo_spec(tmp_path), sandboxed(workspace))
    first = server.ready_client(30)
    with pytest.raises(McpUnavailable, match=r"stopped during the call: it exited with code 3"):
        first.call_tool("crash", {}, 30)
    assert wait_for(lambda: server.status().restarts == 1 and server.status().state == "ready", timeout=30)
    assert server.ready_client(1) is not first
    assert call_text(server, "echo", {"text": "back"}) == ("echo: back", False)


def test_the_child_cannot_see_the_provider_key(managed: Callable[..., ManagedServer], workspace: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_API_KEY", "dapi-test-secret-0001")
    monkeypatch.setenv("LYNKR_TEST_OTHER", "not passed")
    config = sandboxed(workspace, databricks_api_key="dapi-test-secret-0001")
    server = managed(demo_spec(tmp_path, env={"GIVEN": "by the manifest", "STOLEN": "dapi-test-secret-0001"}), config)
    assert call_text(server, "env", {"name": "DATABRICKS_API_KEY"}) == ("<unset>", False)
    assert call_text(server, "env", {"name": "STOLEN"}) == ("<unset>", False)
    assert call_text(server, "env", {"name": "LYNKR_TEST_OTHER"}) == ("<unset>", False)
    assert call_text(server, "env", {"name": "GIVEN"}) == ("by the manifest", False)
    assert call_text(server, "env", {"name": "PATH"}) == (os.environ["PATH"], False)


def test_the_sandbox_refuses_a_write_outside_the_workspace(managed: Callable[..., ManagedServer], workspace: Path,
                                                           tmp_path: Path) -> None:
    server = managed(demo_spec(tmp_path, workspace_writable=True), sandboxed(workspace))
    # Not under /tmp: the sandbox's /tmp is a private tmpfs, where a write succeeds and vanishes.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as elsewhere:
        outside = Path(elsewhere) / "outside.txt"
        text, is_error = call_text(server, "write", {"path": str(outside), "text": "escaped"})
        assert is_error
        assert "Read-only file system" in text
        assert not outside.exists()
    hidden = tmp_path / "in-private-tmp.txt"
    assert call_text(server, "write", {"path": str(hidden), "text": "gone"})[1] is False
    assert not hidden.exists()
    inside = workspace / "inside.txt"
    assert call_text(server, "write", {"path": str(inside), "text": "kept"}) == (
        f"wrote 4 characters to {inside}", False)
    assert inside.read_text() == "kept"


def test_the_workspace_is_read_only_unless_the_manifest_asks(managed: Callable[..., ManagedServer], workspace: Path,
                                                             tmp_path: Path) -> None:
    server = managed(demo_spec(tmp_path), sandboxed(workspace))
    text, is_error = call_text(server, "write", {"path": str(workspace / "x.txt"), "text": "no"})
    assert is_error
    assert "Read-only file system" in text
    assert not (workspace / "x.txt").exists()


def test_with_the_sandbox_on_and_no_runtime_the_server_fails_and_is_not_run(
        managed: Callable[..., ManagedServer], workspace: Path, tmp_path: Path) -> None:
    def no_runtime(spec: ServerSpec, config: Config) -> Any:
        return transport_for(spec, config, which=lambda name: None)

    server = managed(demo_spec(tmp_path), sandboxed(workspace), factory=no_runtime)
    with pytest.raises(McpError, match=r"is failed: no sandbox to run it in: bubblewrap \(bwrap\) is not installed"):
        server.ready_client(10)
    time.sleep(1.5)  # no retry: it stays failed rather than running unconfined
    assert server.status().state == "failed"
    assert server.status().restarts == 0


def test_an_http_server_that_goes_away_is_noticed_by_ping_and_reconnected(
        managed: Callable[..., ManagedServer], tmp_path: Path) -> None:
    port = free_port()
    server = start_http_server(port)
    spec = ServerSpec("web", "http", tmp_path / "m.json", url=f"http://127.0.0.1:{port}/mcp")
    watched = managed(spec, Config(), ping_interval_s=0.3)
    try:
        first = watched.ready_client(30)
        stop_http_server(server)
        assert wait_for(lambda: watched.status().state != "ready")
        assert first.closed_reason is not None
        assert first.closed_reason.startswith("it did not answer ping (MCP server 'web': could not reach")
        server = start_http_server(port)
        assert wait_for(lambda: watched.status().state == "ready", timeout=30)
        assert call_text(watched, "echo", {"text": "again"}) == ("echo: again", False)
    finally:
        stop_http_server(server)


def test_an_expired_http_session_fails_the_call_and_the_server_is_reconnected(
        managed: Callable[..., ManagedServer], tmp_path: Path) -> None:
    port = free_port()
    server = start_http_server(port)
    spec = ServerSpec("web", "http", tmp_path / "m.json", url=f"http://127.0.0.1:{port}/mcp")
    watched = managed(spec, Config())
    try:
        first = watched.ready_client(30)
        stop_http_server(server)
        server = start_http_server(port)  # a new process: it knows no session
        with pytest.raises(McpUnavailable, match=r"the server ended the HTTP session \(404\)"):
            first.call_tool("echo", {"text": "old session"}, 10)
        assert wait_for(lambda: watched.status().state == "ready" and watched.status().restarts == 1, timeout=30)
        assert call_text(watched, "echo", {"text": "new session"}) == ("echo: new session", False)
    finally:
        stop_http_server(server)


def test_the_sandbox_has_no_network_unless_the_manifest_allows_it(
        managed: Callable[..., ManagedServer], workspace: Path, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        closed = managed(demo_spec(tmp_path), sandboxed(workspace))
        text, is_error = call_text(closed, "connect", {"port": port})
        assert is_error
        assert text == "Error executing tool connect: cannot connect: Connection refused"
        opened = managed(demo_spec(tmp_path, id="net", network=True), sandboxed(workspace))
        assert call_text(opened, "connect", {"port": port}) == (f"connected to port {port}", False)
