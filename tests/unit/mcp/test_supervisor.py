"""The supervisor with a scripted launcher: ready, restarted with backoff, refused for good, pinged, stopped."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.mcp import supervisor as supervisor_module
from app.mcp.client import PROTOCOL_VERSION, McpError, McpTimeout, McpUnavailable, ServerTool
from app.mcp.launch import LaunchRefused
from app.mcp.manifest import Discovery, ManifestError, ServerSpec
from app.mcp.supervisor import ManagedServer, ServerStatus, Supervisor, shutdown, start_at_boot, supervisor_for
from app.mcp.transport import Sink, Transport, TransportError
from tests.fakes.mcp_transport import Handler, ScriptedTransport, initialize

FAST = Config(mcp_startup_timeout_ms=2000)


def spec(server_id: str = "demo") -> ServerSpec:
    return ServerSpec(server_id, "stdio", Path("/manifests/m.json"), command="demo-server")


def server_handlers() -> dict[str, Handler]:
    return {"initialize": initialize(),
            "tools/list": lambda params: {"tools": [{"name": "echo", "description": "Echo.",
                                                     "inputSchema": {"type": "object"}}]},
            "ping": lambda params: {}}


class CannotStart(ScriptedTransport):
    """A transport whose process cannot be spawned."""

    def open(self, sink: Sink) -> None:
        raise TransportError("could not start demo-server: No such file or directory")


class Launcher:
    """The supervisor's transport factory: hands out ``outcomes`` in turn (then scripted servers), keeping each."""

    def __init__(self, *outcomes: Transport | Exception, handlers: dict[str, Handler] | None = None) -> None:
        self.outcomes = list(outcomes)
        self.handlers = server_handlers() if handlers is None else handlers
        self.made: list[Transport] = []
        self.calls = 0

    def __call__(self, spec: ServerSpec, config: Config) -> Transport:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else ScriptedTransport(self.handlers)
        if isinstance(outcome, Exception):
            raise outcome
        self.made.append(outcome)
        return outcome


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "BACKOFF_FIRST_S", 0.05)


@pytest.fixture
def managed() -> Iterator[Callable[..., ManagedServer]]:
    servers: list[ManagedServer] = []

    def make(launcher: Launcher, config: Config = FAST, **kwargs: Any) -> ManagedServer:
        server = ManagedServer(spec(), config, launcher, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def warnings(log_records: Callable[[str], list[logging.LogRecord]]) -> Callable[[], list[str]]:
    records = log_records("lynkr.mcp")
    return lambda: [r.getMessage() for r in records if r.levelno == logging.WARNING]


def test_a_started_server_becomes_ready_with_its_tools(managed: Callable[..., ManagedServer]) -> None:
    launcher = Launcher()
    server = managed(launcher)
    assert server.status() == ServerStatus("demo", "stdio", "stopped", "", None, (), 0)
    client = server.ready_client(5)
    server.start()  # once started, starting again does nothing
    assert server.ready_client(0) is client
    assert server.status() == ServerStatus("demo", "stdio", "ready", "", PROTOCOL_VERSION,
                                           (ServerTool("echo", "Echo.", {"type": "object"}),), 0)
    assert launcher.calls == 1


@pytest.mark.usefixtures("quick_backoff")
def test_a_lost_connection_is_reaped_and_restarted(managed: Callable[..., ManagedServer],
                                                   warnings: Callable[[], list[str]]) -> None:
    launcher = Launcher()
    server = managed(launcher)
    first = server.ready_client(5)
    first_transport = launcher.made[0]
    assert first_transport.sink is first  # type: ignore[attr-defined]
    first.closed("it exited with code 3")
    assert wait_for(lambda: server.status().restarts == 1 and server.status().state == "ready")
    assert first_transport.closed is True  # type: ignore[attr-defined]
    second = server.ready_client(0)
    assert second is not first
    assert launcher.calls == 2
    assert warnings() == ["MCP server demo restarting: it exited with code 3; restarting in 0.05 s"]


@pytest.mark.usefixtures("quick_backoff")
def test_a_server_that_cannot_start_is_retried_with_a_doubling_delay(managed: Callable[..., ManagedServer],
                                                                     warnings: Callable[[], list[str]]) -> None:
    launcher = Launcher(CannotStart({}), CannotStart({}), CannotStart({}))
    server = managed(launcher)
    server.start()
    assert wait_for(lambda: server.status().state == "ready")
    assert warnings() == [
        "MCP server demo failed: could not start demo-server: No such file or directory; retrying in 0.05 s",
        "MCP server demo failed: could not start demo-server: No such file or directory; retrying in 0.1 s",
        "MCP server demo failed: could not start demo-server: No such file or directory; retrying in 0.2 s",
    ]
    assert server.status().restarts == 0  # a connection that never came up is not a restart
    assert server.status().reason == ""


@pytest.mark.usefixtures("quick_backoff")
def test_a_launch_refusal_fails_the_server_for_good(managed: Callable[..., ManagedServer]) -> None:
    launcher = Launcher(LaunchRefused("no sandbox to run it in: bubblewrap (bwrap) is not installed"))
    server = managed(launcher)
    with pytest.raises(McpUnavailable) as raised:
        server.ready_client(5)
    assert str(raised.value) == ("MCP server 'demo' is failed: no sandbox to run it in: "
                                 "bubblewrap (bwrap) is not installed")
    time.sleep(0.2)  # four backoffs' worth: no retry comes
    assert launcher.calls == 1
    assert server.status().state == "failed"


def test_waiting_for_a_server_still_starting_is_bounded(managed: Callable[..., ManagedServer]) -> None:
    server = managed(Launcher(handlers={}), Config(mcp_startup_timeout_ms=30000))  # never answers initialize
    with pytest.raises(McpUnavailable) as raised:
        server.ready_client(0.1)
    assert str(raised.value) == "MCP server 'demo' is starting: it did not become ready within 0.1 s"
    started = time.monotonic()
    server.stop()  # ends the handshake in progress rather than waiting it out
    assert time.monotonic() - started < 2
    assert server.status() == ServerStatus("demo", "stdio", "stopped", "the gateway is stopping", None, (), 0)


@pytest.mark.usefixtures("quick_backoff")
def test_a_server_that_stops_answering_ping_is_dropped_but_not_while_busy(
        managed: Callable[..., ManagedServer]) -> None:
    handlers = server_handlers()
    server = managed(Launcher(handlers=handlers), ping_interval_s=0.05)
    first = server.ready_client(5)
    del handlers["ping"]  # the server is wedged: it answers nothing more
    outcome: list[McpError] = []

    def long_call() -> None:
        try:
            first.call_tool("echo", {}, 0.5)
        except McpError as exc:
            outcome.append(exc)

    call = threading.Thread(target=long_call)
    call.start()
    time.sleep(0.3)
    assert first.closed_reason is None  # a call in progress: no ping, the server may be working on it
    call.join()
    assert [type(exc) for exc in outcome] == [McpTimeout]
    assert wait_for(lambda: first.closed_reason is not None)
    assert first.closed_reason == ("it did not answer ping (MCP server 'demo' did not answer ping within 0.05 s; "
                                   "the request was cancelled)")
    assert wait_for(lambda: server.status().restarts >= 1)


def test_a_stopped_server_refuses_callers_and_never_starts_again(managed: Callable[..., ManagedServer]) -> None:
    launcher = Launcher()
    server = managed(launcher)
    server.ready_client(5)
    server.stop()
    assert launcher.made[0].closed is True  # type: ignore[attr-defined]
    with pytest.raises(McpUnavailable, match=r"^MCP server 'demo' is stopped: the gateway is stopping$"):
        server.ready_client(0.1)
    assert launcher.calls == 1
    assert server.status().state == "stopped"


def test_the_supervisor_keeps_declaration_order_and_the_skipped_manifests(tmp_path: Path) -> None:
    problem = ManifestError(tmp_path / "b.json", "mcpServers.x.command", "must be a string")
    refused = LaunchRefused("no sandbox")

    def launcher(spec: ServerSpec, config: Config) -> Transport:
        if spec.id == "broken":
            raise refused
        return ScriptedTransport(server_handlers())

    supervisor = Supervisor(FAST, Discovery((spec("zeta"), spec("broken"), spec("alpha")), (problem,)), launcher)
    try:
        assert supervisor.problems == (problem,)
        assert [s.state for s in supervisor.statuses()] == ["stopped", "stopped", "stopped"]
        supervisor.start_all()
        supervisor.settle(5)
        assert [(s.id, s.state, s.reason) for s in supervisor.statuses()] == [
            ("zeta", "ready", ""), ("broken", "failed", "no sandbox"), ("alpha", "ready", "")]
    finally:
        supervisor.stop_all()
    assert [(s.state, s.reason) for s in supervisor.statuses()] == [("stopped", "the gateway is stopping")] * 3


@pytest.fixture
def no_current(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(supervisor_module, "_current", None)
    yield
    shutdown()


def unreachable_manifest(tmp_path: Path) -> Path:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path / "mcp"
    directory.mkdir()
    (directory / "web.json").write_text(json.dumps({"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp"}}}))
    return directory


@pytest.mark.usefixtures("no_current")
def test_one_supervisor_per_config_and_a_new_config_stops_the_old(tmp_path: Path) -> None:
    directory = unreachable_manifest(tmp_path)
    lazy = Config(mcp_manifest_dirs=str(directory), mcp_start="lazy")
    first = supervisor_for(lazy, environ={})
    assert supervisor_for(Config(mcp_manifest_dirs=str(directory), mcp_start="lazy"), environ={}) is first
    assert [s.state for s in first.statuses()] == ["stopped"]  # lazy: nothing started yet
    first.start_all()
    booted = supervisor_for(Config(mcp_manifest_dirs=str(directory), mcp_start="boot"), environ={})
    assert booted is not first
    assert [(s.state, s.reason) for s in first.statuses()] == [("stopped", "the gateway is stopping")]
    assert [s.state for s in booted.statuses()] != ["stopped"]  # boot: started at once
    shutdown()
    assert supervisor_module._current is None
    assert [(s.state, s.reason) for s in booted.statuses()] == [("stopped", "the gateway is stopping")]


@pytest.mark.usefixtures("no_current")
@pytest.mark.parametrize("overrides", [{"mcp_start": "lazy", "tool_execution_mode": "server"},
                                       {"mcp_start": "boot", "tool_execution_mode": "client"}])
def test_boot_starts_nothing_unless_mcp_start_is_boot_and_tools_are_on(tmp_path: Path,
                                                                       overrides: dict[str, Any]) -> None:
    config = Config(mcp_manifest_dirs=str(unreachable_manifest(tmp_path)), workspace_root=str(tmp_path), **overrides)
    start_at_boot(config)
    assert supervisor_module._current is None


@pytest.mark.usefixtures("no_current")
def test_boot_with_tools_on_starts_the_servers(tmp_path: Path) -> None:
    config = Config(mcp_manifest_dirs=str(unreachable_manifest(tmp_path)), workspace_root=str(tmp_path),
                    mcp_start="boot", tool_execution_mode="server")
    start_at_boot(config)
    assert supervisor_module._current is not None
    assert [s.id for s in supervisor_module._current[1].statuses()] == ["web"]
    assert supervisor_module._current[1].statuses()[0].state != "stopped"

