"""Claude Code's own WebSearch, answered by the gateway.

Claude Code asks for web search with Anthropic's server tool (``{"type": "web_search_20250305",
"name": "web_search"}``) and a ``tool_choice`` forcing it. No upstream we call runs that tool, so
when ``WEB_SEARCH_ENDPOINT`` is set the gateway offers the model an ordinary ``web_search``
function instead, runs the searches the model asks for, and shows the client what Anthropic's
API would: a ``server_tool_use`` block and a ``web_search_tool_result`` block per search.
"""

from __future__ import annotations

from typing import Any

from app.agent.runner import tool_result
from app.config import Config

NAME = "web_search"
DEFAULT_MAX_RESULTS = 8
FUNCTION = {
    "name": NAME,
    "description": "Search the web. Returns titles, URLs and snippets of the most relevant pages.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string", "description": "search terms"}},
                     "required": ["query"]},
}


def server_tool(request: dict[str, Any]) -> dict[str, Any] | None:
    """The request's web-search server tool, if it has one."""
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_"):
            return tool
    return None


def as_function(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its web-search server tool replaced by the :data:`FUNCTION` tool."""
    tools = [FUNCTION if isinstance(t, dict) and str(t.get("type", "")).startswith("web_search_") else t
             for t in request.get("tools") or []]
    return {**request, "tools": tools}


def run(config: Config, call: dict[str, Any], spec: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one search call: the blocks the client sees, and the ``tool_result`` the model gets."""
    from app.tools.web import SearchError, format_results, search_results  # loaded only when a search runs

    query = str((call.get("input") or {}).get("query") or "").strip()
    server_id = "srvtoolu_" + str(call.get("id", "")).removeprefix("toolu_")
    shown_call = {"type": "server_tool_use", "id": server_id, "name": NAME, "input": {"query": query}}
    try:
        if not query:
            raise SearchError("a search query is required")
        results = search_results(config, query, max_results=DEFAULT_MAX_RESULTS,
                                 allowed_domains=tuple(spec.get("allowed_domains") or ()),
                                 blocked_domains=tuple(spec.get("blocked_domains") or ()))
    except SearchError as exc:
        shown_result: dict[str, Any] = {
            "type": "web_search_tool_result", "tool_use_id": server_id,
            "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}}
        return [shown_call, shown_result], tool_result(str(call.get("id")), f"Web search failed: {exc}", True,
                                                       config.tool_result_max_chars)
    shown_result = {"type": "web_search_tool_result", "tool_use_id": server_id, "content": [
        {"type": "web_search_result", "title": r["title"], "url": r["url"], "encrypted_content": "",
         "page_age": None} for r in results]}
    return [shown_call, shown_result], tool_result(str(call.get("id")), format_results(query, results), False,
                                                   config.tool_result_max_chars)
