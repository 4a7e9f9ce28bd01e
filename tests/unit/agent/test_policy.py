"""Loop limits and which Lynkr tools a request is offered."""

from __future__ import annotations

from typing import Any

import pytest

from app.agent.policy import LoopLimits, offered_tools
from app.config import Config
from app.tools.registry import TOOLS


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_are_counted_until_the_limit() -> None:
    limits = LoopLimits(max_steps=2, max_tool_calls=10, max_duration_s=60, clock=Clock())
    assert limits.before_step() is None
    assert limits.before_step() is None
    assert limits.before_step() == "the limit of 2 model calls per request (POLICY_MAX_STEPS)"
    assert limits.steps == 2


def test_tool_calls_are_refused_as_a_batch_past_the_limit() -> None:
    limits = LoopLimits(max_steps=8, max_tool_calls=3, max_duration_s=60, clock=Clock())
    assert limits.before_tools(2) is None
    assert limits.before_tools(2) == "the limit of 3 tool runs per request (POLICY_MAX_TOOL_CALLS)"
    assert limits.tool_calls == 2
    assert limits.before_tools(1) is None


def test_the_time_limit_counts_from_the_start() -> None:
    clock = Clock()
    limits = LoopLimits(max_steps=8, max_tool_calls=3, max_duration_s=30, clock=clock)
    assert limits.before_step() is None
    clock.now += 30
    assert limits.before_step() == "the time limit of 30 s per request (POLICY_MAX_DURATION_MS)"


def request_with(*names: str) -> dict[str, Any]:
    return {"tools": [{"name": name, "input_schema": {"type": "object"}} for name in names]}


def test_auto_leaves_out_tools_that_duplicate_the_clients() -> None:
    claude_code = request_with("Read", "Write", "Edit", "Bash", "Glob", "Grep", "WebFetch", "WebSearch", "Task")
    offered = offered_tools(claude_code, Config(server_tools="auto"), TOOLS)
    assert sorted(offered) == ["project_summary", "workspace_diff", "workspace_diff_review", "workspace_git_branches",
                               "workspace_git_checkout", "workspace_git_commit", "workspace_git_log",
                               "workspace_git_pull", "workspace_git_push", "workspace_git_stage",
                               "workspace_git_status", "workspace_git_unstage", "workspace_goto_definition",
                               "workspace_index_rebuild", "workspace_release_notes", "workspace_symbol_references",
                               "workspace_symbol_search",
                               "workspace_task_create", "workspace_task_delete", "workspace_task_set_status",
                               "workspace_task_update", "workspace_tasks_list", "workspace_test_history",
                               "workspace_test_run", "workspace_test_summary"]


def test_a_client_without_tools_gets_them_all() -> None:
    assert set(offered_tools({}, Config(), TOOLS)) == set(TOOLS)


@pytest.mark.parametrize(("setting", "expected"), [
    ("all", set(TOOLS)), ("none", set()), ("fs_read, shell", {"fs_read", "shell"}),
])
def test_server_tools_setting(setting: str, expected: set[str]) -> None:
    assert set(offered_tools(request_with("Read", "Bash"), Config(server_tools=setting), TOOLS)) == expected


def test_declared_lynkr_tools_are_kept_and_disallowed_ones_never_offered() -> None:
    config = Config(server_tools="none", policy_disallowed_tools=("shell",))
    assert set(offered_tools(request_with("fs_read", "shell"), config, TOOLS)) == {"fs_read"}
    assert "shell" not in offered_tools({}, Config(policy_disallowed_tools=("shell",)), TOOLS)


def test_every_registered_tool_has_a_name_schema_and_description() -> None:
    for name, tool in TOOLS.items():
        definition = tool.definition()
        assert definition["name"] == name
        assert definition["input_schema"]["type"] == "object"
        assert definition["description"].strip()
