"""When the agent path applies, and the turn Agent.prepare builds for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.accounting.usage import RequestRecord
from app.agent import splice, websearch
from app.agent.service import Agent, tools_off_reason
from app.anthropic.encoded import Encoded
from app.config import Config

OPEN_BIND = "the service listens beyond loopback without API keys (LYNKR_ALLOW_OPEN=true)"
BASH = {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def body(tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 256,
                               "messages": [{"role": "user", "content": "List the files."}]}
    if tools is not None:
        request["tools"] = tools
    return request


def record() -> RequestRecord:
    return RequestRecord(request_id="req_agent", path="/v1/messages", api_key="sk-lynkr-user")


@pytest.mark.parametrize(("settings", "reason"), [
    ({"tool_execution_mode": "client", "workspace_root": "/srv/repo"}, "TOOL_EXECUTION_MODE=client"),
    ({"tool_execution_mode": "passthrough", "workspace_root": "/srv/repo"}, "TOOL_EXECUTION_MODE=passthrough"),
    ({"workspace_root": ""}, "WORKSPACE_ROOT is not set"),
    ({"workspace_root": "/srv/repo", "host": "0.0.0.0"}, OPEN_BIND),
    ({"workspace_root": "/srv/repo", "host": "0.0.0.0", "api_keys": ("sk-lynkr-1",)}, None),
    ({"workspace_root": "/srv/repo", "host": "0.0.0.0", "admin_keys": ("sk-lynkr-admin",)}, None),
    ({"workspace_root": "/srv/repo", "host": "127.0.0.1"}, None),
])
def test_tools_off_reason(settings: dict[str, Any], reason: str | None) -> None:
    assert tools_off_reason(Config(**settings)) == reason


def test_tools_off_in_server_mode_warn_once_at_start(log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.agent")

    agent = Agent(Config(workspace_root=""))

    assert agent.off_reason == "WORKSPACE_ROOT is not set"
    assert (agent.registry, agent.workspace) == ({}, None)
    assert [r.getMessage() for r in records] == ["server-side tools are off: WORKSPACE_ROOT is not set"]


def test_client_mode_is_off_without_a_warning(log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.agent")

    Agent(Config(tool_execution_mode="client", workspace_root=""))

    assert records == []


def test_prepare_offers_nothing_when_tools_are_off() -> None:
    agent = Agent(Config(tool_execution_mode="client"))

    assert agent.prepare(body([BASH]), record()) is None


def test_prepare_offers_nothing_when_server_tools_is_none(tmp_path: Path) -> None:
    agent = Agent(Config(workspace_root=str(tmp_path), server_tools="none"))

    assert agent.prepare(body([BASH]), record()) is None


def test_prepare_appends_lynkrs_tools_after_the_clients(tmp_path: Path) -> None:
    agent = Agent(Config(workspace_root=str(tmp_path), server_tools="fs_read,workspace_list"))
    client_body = body([BASH])

    turn = agent.prepare(client_body, record())

    assert turn is not None
    assert [t["name"] for t in turn.request["tools"]] == ["Bash", "fs_read", "workspace_list"]
    assert turn.request["tools"][1] == agent.registry["fs_read"].definition()
    assert sorted(turn.offered) == ["fs_read", "workspace_list"]
    assert turn.request["messages"] == client_body["messages"]
    assert turn.web_search is None
    assert client_body["tools"] == [BASH]
    assert turn.tool_ctx is not None
    assert turn.tool_ctx.workspace is agent.workspace
    assert (turn.tool_ctx.session_id, turn.tool_ctx.api_key, turn.tool_ctx.request_id) == (
        None, "sk-lynkr-user", "req_agent")


def test_prepare_splices_the_sessions_steps_with_the_bodys_notes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    agent = Agent(Config(workspace_root=str(tmp_path), server_tools="fs_read"))
    client_body = body([BASH])
    given = Encoded(client_body["messages"])
    step = {"role": "assistant", "content": "the real step"}
    indented = orjson.dumps(step, option=orjson.OPT_INDENT_2)  # not what dumps writes: taken, not made
    spliced = splice.Spliced([*client_body["messages"], step], {id(step): indented})
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(splice, "splice", lambda *args: calls.append(args) or spliced)

    turn = agent.prepare(client_body, RequestRecord(request_id="r", path="/v1/messages", session_id="s1",
                                                    api_key="sk-lynkr-user"), given)

    assert turn is not None
    assert turn.request["messages"] is spliced.messages
    assert calls == [(splice.trace_session("s1", "sk-lynkr-user"), client_body["messages"], given.notes, agent.traces)]
    assert turn.trace_key == splice.trace_session("s1", "sk-lynkr-user")  # where the loop stores its steps
    assert turn.encoded is not None
    assert turn.encoded.matches(spliced.messages)
    assert turn.encoded.parts == [given.parts[0], indented]
    agent.prepare(client_body, record(), Encoded([{"role": "user", "content": "another body"}]))
    assert calls[-1] == (None, client_body["messages"], None, agent.traces)  # notes of other messages: unused


def test_a_lynkr_tool_the_client_declares_is_not_added_again(tmp_path: Path) -> None:
    agent = Agent(Config(workspace_root=str(tmp_path), server_tools="fs_read,workspace_list"))
    declared = {"name": "fs_read", "description": "the client's own copy", "input_schema": {"type": "object"}}

    turn = agent.prepare(body([BASH, declared]), record())

    assert turn is not None
    assert [t["name"] for t in turn.request["tools"]] == ["Bash", "fs_read", "workspace_list"]
    assert turn.request["tools"][1] is declared
    assert sorted(turn.offered) == ["fs_read", "workspace_list"]


def test_a_body_without_tools_gets_lynkrs(tmp_path: Path) -> None:
    agent = Agent(Config(workspace_root=str(tmp_path), server_tools="fs_read"))

    turn = agent.prepare(body(), record())

    assert turn is not None
    assert turn.request["tools"] == [agent.registry["fs_read"].definition()]


def test_web_search_runs_on_the_gateway_even_with_tools_off() -> None:
    agent = Agent(Config(tool_execution_mode="client", web_search_endpoint="https://search.example/api"))

    turn = agent.prepare(body([BASH, WEB_SEARCH]), record())

    assert turn is not None
    assert turn.request["tools"] == [BASH, websearch.FUNCTION]
    assert (turn.offered, turn.tool_ctx, turn.web_search) == ({}, None, WEB_SEARCH)


def test_web_search_without_an_endpoint_goes_to_the_provider() -> None:
    agent = Agent(Config(tool_execution_mode="client"))

    assert agent.prepare(body([WEB_SEARCH]), record()) is None
