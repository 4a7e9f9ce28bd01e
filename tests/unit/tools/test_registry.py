"""The tool registry: every tool under its own name, definitions the API accepts, and provided tools."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import app.tools
from app.config import Config
from app.tools import registry
from app.tools.base import Tool
from app.tools.registry import PROVIDERS, TOOLS, provided_tools

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Anthropic's tool name rule


def test_every_tool_is_registered_under_its_own_name_with_a_valid_definition() -> None:
    assert len(TOOLS) >= 20
    for name, tool in TOOLS.items():
        assert tool.name == name
        assert NAME.match(name), name
        definition = tool.definition()
        assert definition["description"].strip(), name
        assert definition["input_schema"]["type"] == "object", name


def tool_groups() -> list[tuple[Tool, ...]]:
    """Every ``*_TOOLS`` tuple defined in a module of app.tools (each once, wherever it is imported)."""
    groups: dict[int, tuple[Tool, ...]] = {}
    for module in pkgutil.walk_packages(app.tools.__path__, "app.tools."):
        for name, value in vars(importlib.import_module(module.name)).items():
            if name.endswith("_TOOLS") and isinstance(value, tuple) and all(isinstance(t, Tool) for t in value):
                groups[id(value)] = value
    return list(groups.values())


def test_every_tool_group_is_registered_and_no_two_tools_share_a_name() -> None:
    offered = [tool.name for group in tool_groups() for tool in group]
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
