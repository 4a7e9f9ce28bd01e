"""A server's environment and sandbox: nothing of the gateway's secrets, refused without a runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Config
from app.mcp.http import HttpTransport
from app.mcp.launch import LaunchRefused, server_env, transport_for
from app.mcp.manifest import ServerSpec
from app.mcp.stdio import StdioTransport

GATEWAY_ENV = {"PATH": "/usr/bin", "HOME": "/home/l", "LANG": "C.UTF-8", "DATABRICKS_API_KEY": "dapi-secret-1",
               "DATABASE_URL": "postgres://u:p@h/db", "EXTRA": "e", "TERM": "xterm"}


def spec(tmp_path: Path, **fields: object) -> ServerSpec:
    return ServerSpec(**{"id": "s", "transport": "stdio", "source": tmp_path / "m.json", "command": "srv",
                         **fields})  # type: ignore[arg-type]


def test_the_child_gets_the_allow_list_and_its_manifest_env_only(tmp_path: Path) -> None:
    config = Config(databricks_api_key="dapi-secret-1", sandbox_passthrough_env=("TERM",))
    env = server_env(spec(tmp_path, env={"TOKEN": "t1", "LEAK": "dapi-secret-1"}), config, GATEWAY_ENV)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/l", "LANG": "C.UTF-8", "TERM": "xterm", "TOKEN": "t1"}


def test_sandboxed_the_workspace_is_read_only_and_the_network_off_unless_asked(tmp_path: Path) -> None:
    config = Config(workspace_root=str(tmp_path), sandbox_enabled=True, sandbox_runtime="bubblewrap")
    which = {"bwrap": "/usr/bin/bwrap"}.get
    closed = transport_for(spec(tmp_path, args=("--x",)), config, environ=GATEWAY_ENV, which=which)
    assert isinstance(closed, StdioTransport)
    argv = closed.argv
    assert argv[0] == "/usr/bin/bwrap"
    assert argv[argv.index(str(tmp_path)) - 1] == "--ro-bind"
    assert "--share-net" not in argv
    assert argv[-3:] == ["--", "srv", "--x"]
    opened = transport_for(spec(tmp_path, workspace_writable=True, network=True), config, environ=GATEWAY_ENV,
                           which=which)
    assert isinstance(opened, StdioTransport)
    assert opened.argv[opened.argv.index(str(tmp_path)) - 1] == "--bind"
    assert "--share-net" in opened.argv


def test_under_docker_stdin_stays_attached_and_the_workspace_is_read_only(tmp_path: Path) -> None:
    config = Config(workspace_root=str(tmp_path), sandbox_enabled=True, sandbox_runtime="docker",
                    sandbox_image="lynkr-sandbox:1")
    transport = transport_for(spec(tmp_path), config, environ=GATEWAY_ENV, which={"docker": "/usr/bin/docker"}.get)
    assert isinstance(transport, StdioTransport)
    argv = transport.argv
    assert argv[:4] == ["/usr/bin/docker", "run", "--rm", "--interactive"]
    assert f"type=bind,source={tmp_path},target={tmp_path},readonly" in argv
    assert argv[argv.index("--network") + 1] == "none"
    assert argv[-2:] == ["lynkr-sandbox:1", "srv"]


def test_with_the_sandbox_on_and_no_runtime_the_server_is_refused(tmp_path: Path) -> None:
    config = Config(workspace_root=str(tmp_path), sandbox_enabled=True)
    with pytest.raises(LaunchRefused, match=r"no sandbox to run it in: bubblewrap \(bwrap\) is not installed"):
        transport_for(spec(tmp_path), config, environ=GATEWAY_ENV, which=lambda name: None)


def test_unsandboxed_the_child_dies_with_the_gateway(tmp_path: Path) -> None:
    config = Config(workspace_root=str(tmp_path), sandbox_enabled=False)
    transport = transport_for(spec(tmp_path), config, environ=GATEWAY_ENV, which={"setpriv": "/usr/bin/setpriv"}.get)
    assert isinstance(transport, StdioTransport)
    assert transport.argv == ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "srv"]
    assert transport.cwd == tmp_path


def test_an_http_server_needs_no_process(tmp_path: Path) -> None:
    transport = transport_for(spec(tmp_path, transport="http", url="http://127.0.0.1:1/mcp", headers={"A": "b"}),
                              Config(), environ=GATEWAY_ENV)
    assert isinstance(transport, HttpTransport)
    assert (transport.url, transport.headers) == ("http://127.0.0.1:1/mcp", {"A": "b"})
