"""The explicit ``TOOLS`` registry: name → :class:`~app.tools.base.Tool`, every Lynkr tool."""

from __future__ import annotations

from app.tools.base import Tool
from app.tools.search import SEARCH_TOOLS
from app.tools.shell import SHELL_TOOLS
from app.tools.tasks import TASK_TOOLS
from app.tools.tests import TEST_TOOLS
from app.tools.web import WEB_TOOLS
from app.tools.workspace import WORKSPACE_TOOLS

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    *WORKSPACE_TOOLS, *SEARCH_TOOLS, *SHELL_TOOLS, *TEST_TOOLS, *TASK_TOOLS, *WEB_TOOLS)}
