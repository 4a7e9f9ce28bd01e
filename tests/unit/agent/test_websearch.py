"""Claude Code's web search server tool: offered as a function, run, and shown as Anthropic would show it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
import responses

from app.agent.websearch import FUNCTION, as_function, run, server_tool
from app.config import Config

SEARCH_URL = "http://search.internal:8888/search"
SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
READ = {"name": "Read", "input_schema": {"type": "object"}}
CONFIG = Config(web_search_endpoint=SEARCH_URL)
RESULTS = {"results": [
    {"title": "Lynkr", "url": "https://example.com/lynkr", "content": "A gateway  for\nClaude Code."},
    {"title": "Elsewhere", "url": "https://blocked.example/x", "content": "Not wanted."},
    {"title": "Not the web", "url": "ftp://example.com/f"},
]}


def test_the_server_tool_is_found_and_replaced_by_the_function() -> None:
    request = {"model": "m", "tools": [READ, SERVER_TOOL]}
    assert server_tool(request) is SERVER_TOOL
    assert server_tool({"tools": [READ, "junk"]}) is None
    assert server_tool({}) is None
    assert as_function(request) == {"model": "m", "tools": [READ, FUNCTION]}
    assert request["tools"] == [READ, SERVER_TOOL]


@responses.activate
def test_a_search_shows_server_blocks_and_gives_the_model_numbered_results() -> None:
    responses.get(SEARCH_URL, json=RESULTS)
    shown, result = run(CONFIG, {"id": "toolu_abc", "input": {"query": " lynkr "}},
                        {**SERVER_TOOL, "blocked_domains": ["blocked.example"]})
    assert parse_qs(urlsplit(str(responses.calls[0].request.url)).query) == {"q": ["lynkr"], "format": ["json"]}
    assert shown == [
        {"type": "server_tool_use", "id": "srvtoolu_abc", "name": "web_search", "input": {"query": "lynkr"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_abc", "content": [
            {"type": "web_search_result", "title": "Lynkr", "url": "https://example.com/lynkr",
             "encrypted_content": "", "page_age": None}]},
    ]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_abc",
                      "content": "1. Lynkr\n   https://example.com/lynkr\n   A gateway for Claude Code."}


@responses.activate
def test_allowed_domains_keep_only_those() -> None:
    responses.get(SEARCH_URL, json=RESULTS)
    shown, _ = run(CONFIG, {"id": "toolu_1", "input": {"query": "q"}}, {"allowed_domains": ["*.blocked.example"]})
    assert [r["url"] for r in shown[1]["content"]] == ["https://blocked.example/x"]


def test_an_empty_query_is_an_unavailable_search_and_an_error_result() -> None:
    shown, result = run(CONFIG, {"id": "toolu_1", "input": {"query": "  "}}, SERVER_TOOL)
    assert shown[1] == {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                        "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}}
    assert result == {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                      "content": "Web search failed: a search query is required"}


@responses.activate
def test_an_unreachable_endpoint_or_none_configured_is_said_to_the_model() -> None:
    responses.get(SEARCH_URL, body=requests.ConnectionError("refused"))
    _, result = run(CONFIG, {"id": "toolu_1", "input": {"query": "q"}}, SERVER_TOOL)
    assert result["content"] == "Web search failed: the search endpoint could not be reached (ConnectionError)"
    _, off = run(Config(), {"id": "toolu_2", "input": {"query": "q"}}, SERVER_TOOL)
    assert off["content"] == ("Web search failed: web search is off: set WEB_SEARCH_ENDPOINT to a SearXNG JSON "
                              "search URL")
    assert off["is_error"] is True
