"""The agent path of ``/v1/messages``: when it applies, and the turn it runs.

A request takes this path when the gateway has tools of its own to offer (``server`` mode, a
``WORKSPACE_ROOT``, a safe bind) or when it carries Claude Code's web-search server tool and
``WEB_SEARCH_ENDPOINT`` is set. Otherwise it goes straight to the provider, untouched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from app.accounting.usage import RequestRecord
from app.agent import splice, websearch
from app.agent.loop import Turn
from app.agent.policy import offered_tools
from app.anthropic.encoded import Encoded
from app.config import Config
from app.logging import get_logger
from app.tools.base import Tool, ToolContext
from app.tools.paths import Workspace

log = get_logger("agent")


def tools_off_reason(config: Config) -> str | None:
    """Why Lynkr's own tools are off under ``config``, or None when they are on."""
    if config.tool_execution_mode != "server":
        return f"TOOL_EXECUTION_MODE={config.tool_execution_mode}"
    if not config.workspace_root:
        return "WORKSPACE_ROOT is not set"
    if not config.is_loopback and not (config.api_keys or config.admin_keys):
        return "the service listens beyond loopback without API keys (LYNKR_ALLOW_OPEN=true)"
    return None


class Agent:
    """Decides whether a request runs through the tool loop, and prepares its turn."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.off_reason = tools_off_reason(config)
        self.traces = splice.TraceCache()
        self.registry: Mapping[str, Tool] = {} if self.off_reason else _registry()
        self.workspace = None if self.off_reason else Workspace(
            config.workspace_root, deny=config.policy_file_blocked_paths,
            protected=[p for p in (config.session_db_path, config.prometheus_multiproc_dir, os.path.abspath(".env"))
                       if p])
        if self.off_reason and config.tool_execution_mode == "server":
            log.warning("server-side tools are off: %s", self.off_reason)

    def prepare(self, body: dict[str, Any], record: RequestRecord, given: Encoded | None = None) -> Turn | None:
        """The turn for ``body`` when it takes the agent path, else None (``given``: its messages
        encoded, whose notes keep what splicing works out per message; the turn's messages are
        encoded from them and the stored steps' bytes)."""
        web = websearch.server_tool(body) if self.config.web_search_endpoint else None
        offered = offered_tools(body, self.config, self.registry) if self.workspace else {}
        if web is not None:
            offered.pop(websearch.NAME, None)
        if not offered and web is None:
            return None
        request = websearch.as_function(body) if web is not None else dict(body)
        declared = {t.get("name") for t in request.get("tools") or [] if isinstance(t, dict)}
        request["tools"] = [*(request.get("tools") or []),
                            *(t.definition() for name, t in offered.items() if name not in declared)]
        trace_key = splice.trace_session(record.session_id, record.api_key)
        spliced = splice.splice(trace_key, body["messages"],
                                given.notes_for(body["messages"]) if given is not None else None, self.traces)
        request["messages"] = spliced.messages
        tool_ctx = ToolContext(self.config, self.workspace, record.session_id, record.api_key,
                               record.request_id) if self.workspace else None
        encoded = given.reusing(spliced.messages, spliced.parts) if given is not None else None
        return Turn(request, offered, tool_ctx, web, encoded, spliced.stored, trace_key)


def _registry() -> Mapping[str, Tool]:
    """The tools, imported only when they are on (their modules cost memory in every worker)."""
    from app.tools.registry import TOOLS

    return TOOLS
