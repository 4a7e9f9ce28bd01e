"""Lynkr's own tools: the explicit ``TOOLS`` registry, name → :class:`~app.tools.base.Tool`."""

from __future__ import annotations

from app.tools.base import Tool, ToolContext, ToolError, ToolOutput

TOOLS: dict[str, Tool] = {}


def register(*tools: Tool) -> None:
    """Add ``tools`` to the registry (each module's list is added once, below)."""
    for tool in tools:
        if tool.name in TOOLS:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        TOOLS[tool.name] = tool


__all__ = ["TOOLS", "Tool", "ToolContext", "ToolError", "ToolOutput", "register"]
