"""The explicit ``TOOLS`` registry: name → :class:`~app.tools.base.Tool`, every Lynkr tool.

Tools that come and go while the gateway runs (the MCP servers') come from the
:data:`PROVIDERS`: functions of the settings that answer from current state without waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from app.config import Config
from app.mcp.tools import mcp_tools
from app.tools.base import Tool
from app.tools.git.tools import GIT_TOOLS
from app.tools.index.tools import INDEX_TOOLS
from app.tools.review import REVIEW_TOOLS
from app.tools.search import SEARCH_TOOLS
from app.tools.shell import SHELL_TOOLS
from app.tools.summary import SUMMARY_TOOLS
from app.tools.tasks import TASK_TOOLS
from app.tools.tests import TEST_TOOLS
from app.tools.web import WEB_TOOLS
from app.tools.workspace import WORKSPACE_TOOLS

ToolProvider = Callable[[Config], Mapping[str, Tool]]

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    *WORKSPACE_TOOLS, *SEARCH_TOOLS, *SHELL_TOOLS, *TEST_TOOLS, *TASK_TOOLS, *WEB_TOOLS, *INDEX_TOOLS, *SUMMARY_TOOLS,
    *GIT_TOOLS, *REVIEW_TOOLS)}
PROVIDERS: tuple[ToolProvider, ...] = (mcp_tools,)


def provided_tools(config: Config) -> dict[str, Tool]:
    """Every provider's tools as they stand now."""
    tools: dict[str, Tool] = {}
    for provider in PROVIDERS:
        tools.update(provider(config))
    return tools
