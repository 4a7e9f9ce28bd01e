"""MCP tools in the server-side tool loop, through /v1/messages, with a scripted model and a real server."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.mcp.supervisor import shutdown, supervisor_for
from tests.integration.test_agent_loop import ScriptedUpstream, answer, ask, mocked, text, tool_call, tool_names
from tests.servers import demo_mcp

__all__ = ["mocked"]  # the fixture, used by name
pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def mcp_app(make_app: Callable[..., Flask], workspace: Path, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    def build(servers: dict[str, Any], **overrides: Any) -> Flask:
        manifest = tmp_path / ".mcp.json"
        manifest.write_text(json.dumps({"mcpServers": servers}))
        app = make_app(workspace_root=str(workspace), mcp_manifest_dirs="", mcp_server_manifest=str(manifest),
                       **overrides)
        supervisor_for(app.extensions["lynkr"].config).servers["demo"].ready_client(30)
        return app

    yield build
    shutdown()


DEMO = {"command": sys.executable, "args": [demo_mcp.__file__, "stdio"]}


def result_of(body: dict[str, Any]) -> dict[str, Any]:
    """The tool_result block of the model's second call."""
    return body["messages"][-1]["content"][0]


def test_the_model_calls_an_mcp_tool_and_gets_its_text(mcp_app: Callable[..., Flask], mocked: Any) -> None:
    app = mcp_app({"demo": DEMO})
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "mcp_demo_echo", text="hi")),
                                         answer(text("It said hi."))])
    response = ask(app.test_client(), [{"role": "user", "content": "echo hi"}])
    assert response.status_code == 200
    assert response.get_json()["content"][-1]["text"].endswith("It said hi.")
    offered = {tool["name"]: tool for tool in upstream.bodies[0]["tools"]}
    assert {"workspace_mcp_servers", "workspace_mcp_call", "mcp_demo_echo", "mcp_demo_pixel"} <= set(offered)
    assert offered["mcp_demo_echo"]["description"] == "[MCP server demo] Echo the text back."
    assert offered["mcp_demo_echo"]["input_schema"]["required"] == ["text"]
    assert result_of(upstream.bodies[1]) == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "echo: hi"}


def test_an_image_result_and_an_error_result(mcp_app: Callable[..., Flask], mocked: Any) -> None:
    app = mcp_app({"demo": DEMO})
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "mcp_demo_pixel")), answer(text("A pixel.")),
                                         answer(tool_call("toolu_2", "mcp_demo_fail", reason="today")),
                                         answer(text("It failed."))])
    client = app.test_client()
    assert ask(client, [{"role": "user", "content": "draw"}]).status_code == 200
    assert result_of(upstream.bodies[1])["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": __import__("base64").b64encode(demo_mcp.png_pixel()).decode()}}]
    assert ask(client, [{"role": "user", "content": "fail"}]).status_code == 200
    assert result_of(upstream.bodies[3]) == {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                                             "content": "Error executing tool fail: failed today"}


def test_workspace_mcp_call_takes_both_forms(mcp_app: Callable[..., Flask], mocked: Any) -> None:
    app = mcp_app({"demo": DEMO})
    upstream = ScriptedUpstream(mocked, [
        answer(tool_call("toolu_1", "workspace_mcp_call", server="demo", tool="echo", arguments={"text": "a"}),
               tool_call("toolu_2", "workspace_mcp_call", server_id="demo", method="tools/call",
                         params={"name": "echo", "arguments": {"text": "b"}}),
               tool_call("toolu_3", "workspace_mcp_call", server="demo", method="tools/list")),
        answer(text("ok"))])
    assert ask(app.test_client(), [{"role": "user", "content": "go"}]).status_code == 200
    results = upstream.bodies[1]["messages"][-1]["content"]
    assert [r["content"] for r in results[:2]] == ["echo: a", "echo: b"]
    listed = json.loads(results[2]["content"])
    assert [tool["name"] for tool in listed["tools"]] == ["echo", "pixel", "fail", "slow", "crash", "env", "write",
                                                          "connect", "grow"]


def test_policy_hides_disallowed_and_unlisted_tools(mcp_app: Callable[..., Flask], mocked: Any) -> None:
    app = mcp_app({"demo": DEMO}, policy_disallowed_tools=("mcp_demo_crash",),
                  mcp_tool_allowlist=("demo/echo", "demo/crash", "demo/env"))
    upstream = ScriptedUpstream(mocked, [
        answer(tool_call("toolu_1", "workspace_mcp_call", server="demo", tool="crash"),
               tool_call("toolu_2", "workspace_mcp_call", server="demo", tool="pixel")),
        answer(text("no"))])
    assert ask(app.test_client(), [{"role": "user", "content": "go"}]).status_code == 200
    assert [n for n in tool_names(upstream.bodies[0]) if n.startswith("mcp_")] == ["mcp_demo_echo", "mcp_demo_env"]
    refused = "is not allowed by the gateway's policy (MCP_TOOL_ALLOWLIST / POLICY_DISALLOWED_TOOLS)"
    assert [r["content"] for r in upstream.bodies[1]["messages"][-1]["content"]] == [
        f"tool 'crash' of MCP server 'demo' {refused}", f"tool 'pixel' of MCP server 'demo' {refused}"]


def test_a_hung_server_does_not_hold_up_a_request_that_does_not_use_it(
        mcp_app: Callable[..., Flask], mocked: Any) -> None:
    hung = {"command": sys.executable, "args": ["-c", "import time; time.sleep(600)"]}
    app = mcp_app({"demo": DEMO, "hung": hung}, mcp_startup_timeout_ms=60000, mcp_call_timeout_ms=1000)
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "mcp_demo_echo", text="fast")),
                                         answer(text("done")),
                                         answer(tool_call("toolu_2", "workspace_mcp_call", server="hung", tool="x")),
                                         answer(text("it is stuck"))])
    client = app.test_client()
    started = time.monotonic()
    assert ask(client, [{"role": "user", "content": "echo"}]).status_code == 200
    assert time.monotonic() - started < 10
    assert result_of(upstream.bodies[1])["content"] == "echo: fast"
    assert ask(client, [{"role": "user", "content": "use hung"}]).status_code == 200
    assert result_of(upstream.bodies[3]) == {
        "type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
        "content": "MCP server 'hung' is starting: it did not become ready within 1 s"}


def test_lazy_servers_start_with_the_first_request_and_are_offered_once_ready(
        make_app: Callable[..., Flask], workspace: Path, tmp_path: Path, mocked: Any) -> None:
    manifest = tmp_path / "lazy.json"
    manifest.write_text(json.dumps([{"id": "demo", **DEMO}]))
    app = make_app(workspace_root=str(workspace), mcp_manifest_dirs="", mcp_server_manifest=str(manifest),
                   mcp_start="lazy")
    try:
        supervisor = supervisor_for(app.extensions["lynkr"].config)
        assert [status.state for status in supervisor.statuses()] == ["stopped"]
        upstream = ScriptedUpstream(mocked, [answer(text("one")), answer(text("two"))])
        client = app.test_client()
        assert ask(client, [{"role": "user", "content": "hi"}]).status_code == 200
        assert not [n for n in tool_names(upstream.bodies[0]) if n.startswith("mcp_demo_")]
        supervisor.servers["demo"].ready_client(30)
        assert ask(client, [{"role": "user", "content": "hi"}]).status_code == 200
        assert "mcp_demo_echo" in tool_names(upstream.bodies[1])
    finally:
        shutdown()
