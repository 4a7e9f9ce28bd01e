"""The tool registry: every tool under its own name, definitions the API accepts, and provided tools."""

from __future__ import annotations

import re

import pytest

from app.config import Config
from app.tools import registry
from app.tools.base import Tool
from app.tools.git.tools import GIT_TOOLS
from app.tools.index.tools import INDEX_TOOLS
from app.tools.registry import PROVIDERS, TOOLS, provided_tools
from app.tools.review import REVIEW_TOOLS
from app.tools.search import SEARCH_TOOLS
from app.tools.shell import SHELL_TOOLS
from app.tools.summary import SUMMARY_TOOLS
from app.tools.tasks import TASK_TOOLS
from app.tools.tests import TEST_TOOLS
from app.tools.web import WEB_TOOLS
from app.tools.workspace import WORKSPACE_TOOLS

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Anthropic's tool name rule


def test_every_tool_is_registered_under_its_own_name_with_a_valid_definition() -> None:
    assert len(TOOLS) >= 20
    for name, tool in TOOLS.items():
        assert tool.name == name
        assert NAME.match(name), name
        definition = tool.definition()
        assert definition["description"].strip(), name
        assert definition["input_schema"]["type"] == "object", name


def test_no_two_tool_modules_claim_one_name() -> None:
    offered = [tool.name for group in (WORKSPACE_TOOLS, SEARCH_TOOLS, SHELL_TOOLS, TEST_TOOLS, TASK_TOOLS, WEB_TOOLS,
                                       INDEX_TOOLS, SUMMARY_TOOLS, GIT_TOOLS, REVIEW_TOOLS) for tool in group]
    assert sorted(offered) == sorted(TOOLS)
    assert {"fs_read", "fs_write", "edit_patch", "shell", "web_fetch", "web_search", "workspace_search",
            "workspace_test_run", "workspace_task_create", "workspace_git_status"} <= set(TOOLS)


def test_provided_tools_merge_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    first = Tool("a", "A", {"type": "object"}, lambda ctx, args: "a")
    second = Tool("a", "A2", {"type": "object"}, lambda ctx, args: "a2")
    monkeypatch.setattr(registry, "PROVIDERS", (lambda config: {"a": first}, lambda config: {"a": second}))
    assert provided_tools(Config()) == {"a": second}


def test_without_mcp_servers_nothing_is_provided() -> None:
    assert len(PROVIDERS) == 1
    assert provided_tools(Config()) == {}
