"""Running one server tool call: results, every refusal as is_error, and the per-session dedup of retries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from peewee import Database

from app.agent.runner import run_call, tool_result
from app.config import Config
from app.storage.db import db
from app.storage.models import ToolExecution
from app.tools.base import Tool, ToolContext, ToolError
from app.tools.paths import Workspace


class Counter:
    """A tool that counts its runs and echoes its arguments."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        self.runs += 1
        if args.get("refuse"):
            raise ToolError("not that file")
        if args.get("crash"):
            raise RuntimeError("bug")
        return f"ran {self.runs}: {args.get('say', '')}"


@pytest.fixture
def counter() -> Counter:
    return Counter()


@pytest.fixture
def tool(counter: Counter) -> Tool:
    return Tool("echo", "Echo", {"type": "object"}, counter)


@pytest.fixture
def make_ctx(tmp_path: Path, unconnected_db: Database) -> Callable[..., ToolContext]:
    def build(session_id: str | None = "sess-1", api_key: str | None = None, **config: Any) -> ToolContext:
        return ToolContext(config=Config(**config), workspace=Workspace(tmp_path), session_id=session_id,
                           api_key=api_key, request_id="req-1")

    return build


def call(call_id: str = "toolu_1", name: str = "echo", **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": args}


def test_a_result_block_and_its_stored_row(tool: Tool, make_ctx: Callable[..., ToolContext]) -> None:
    assert run_call(call(say="hi"), tool, make_ctx()) == {
        "type": "tool_result", "tool_use_id": "toolu_1", "content": "ran 1: hi"}
    with db.connection_context():
        row = ToolExecution.get()
    assert (row.session_id, row.tool_use_id, row.request_id, row.name, row.is_error) == (
        "sess-1", "toolu_1", "req-1", "echo", False)
    assert orjson.loads(row.input) == {"say": "hi"}
    assert isinstance(row.duration_ms, float)


def test_a_retried_call_in_the_same_session_reuses_the_stored_result(
        tool: Tool, counter: Counter, make_ctx: Callable[..., ToolContext]) -> None:
    first = run_call(call(say="a"), tool, make_ctx())
    assert run_call(call(say="a"), tool, make_ctx()) == first
    assert counter.runs == 1
    assert run_call(call(say="a"), tool, make_ctx(session_id="sess-2"))["content"] == "ran 2: a"
    assert run_call(call(say="a"), tool, make_ctx(policy_tool_dedup_window_ms=0))["content"] == "ran 3: a"


def test_another_key_sending_the_same_session_and_call_id_runs_the_tool_itself(
        tool: Tool, counter: Counter, make_ctx: Callable[..., ToolContext]) -> None:
    mine = run_call(call(say="a"), tool, make_ctx(api_key="key_a"))
    theirs = run_call(call(say="a"), tool, make_ctx(api_key="key_b"))
    assert (mine["content"], theirs["content"]) == ("ran 1: a", "ran 2: a"), "key b never gets key a's result"
    assert run_call(call(say="a"), tool, make_ctx(api_key="key_a")) == mine
    assert run_call(call(say="a"), tool, make_ctx())["content"] == "ran 3: a"
    with db.connection_context():
        assert sorted((row.owner, orjson.loads(row.result)["content"]) for row in ToolExecution.select()) == [
            ("", "ran 3: a"), ("key_a", "ran 1: a"), ("key_b", "ran 2: a")]


def test_without_a_session_nothing_is_stored(tool: Tool, counter: Counter,
                                             make_ctx: Callable[..., ToolContext]) -> None:
    run_call(call(), tool, make_ctx(session_id=None))
    run_call(call(), tool, make_ctx(session_id=None))
    assert counter.runs == 2
    with db.connection_context():
        assert ToolExecution.select().count() == 0


@pytest.mark.parametrize(("the_call", "the_tool", "config", "message"), [
    (call(name="nope"), None, {}, "Tool 'nope' is not available on this gateway."),
    (call(), "tool", {"policy_disallowed_tools": ("echo",)},
     "Tool 'echo' is disallowed by the gateway's policy (POLICY_DISALLOWED_TOOLS)."),
    ({"id": "toolu_1", "name": "echo", "input": "text"}, "tool", {},
     "Tool 'echo' needs its arguments as a JSON object."),
    (call(refuse=True), "tool", {}, "not that file"),
])
def test_refusals_are_error_results(the_call: dict[str, Any], the_tool: str | None, config: dict[str, Any],
                                    message: str, tool: Tool, make_ctx: Callable[..., ToolContext]) -> None:
    result = run_call(the_call, tool if the_tool else None, make_ctx(**config))
    assert result == {"type": "tool_result", "tool_use_id": "toolu_1", "content": message, "is_error": True}


def test_a_crashing_tool_is_an_error_result_and_a_logged_traceback(
        tool: Tool, make_ctx: Callable[..., ToolContext],
        log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.agent.tools")
    result = run_call(call(crash=True), tool, make_ctx())
    assert result["content"] == "Tool 'echo' failed with an internal error; the gateway's log has the details."
    assert result["is_error"] is True
    assert [(r.getMessage(), r.exc_info[0]) for r in records if r.exc_info] == [("tool echo failed", RuntimeError)]
    with db.connection_context():
        assert ToolExecution.get().is_error is True


def test_tool_result_cuts_text_but_not_blocks() -> None:
    assert tool_result("t", "abcdef", False, 3) == {"type": "tool_result", "tool_use_id": "t",
                                                   "content": "abc\n… [truncated: 3 more characters]"}
    blocks = [{"type": "text", "text": "abcdef"}]
    assert tool_result("t", blocks, True, 3) == {"type": "tool_result", "tool_use_id": "t", "content": blocks,
                                                 "is_error": True}
