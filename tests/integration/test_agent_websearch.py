"""Claude Code's WebSearch server tool, answered by the gateway through WEB_SEARCH_ENDPOINT."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask import Flask

from app.anthropic.events import validate_stream
from tests.integration.test_agent_loop import ScriptedUpstream, answer, text, tool_call
from tests.integration.test_messages_anthropic import CLIENT_HEADERS, read_events

SEARCH_URL = "http://search.internal:8888/search"
SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
RESULTS = {"results": [
    {"title": "Lynkr", "url": "https://example.com/lynkr", "content": "A gateway for Claude Code."},
    {"title": "Elsewhere", "url": "https://blocked.example/x", "content": "Not wanted."},
]}


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def searches(mocked: responses.RequestsMock) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def answer_search(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append({"query": parse_qs(urlsplit(request.url).query), "auth": request.headers.get("Authorization")})
        return 200, {"content-type": "application/json"}, json.dumps(RESULTS)

    mocked.add_callback(responses.GET, SEARCH_URL, callback=answer_search)
    return seen


def search_request(stream: bool) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
            "messages": [{"role": "user", "content": "Perform a web search for the query: lynkr gateway"}],
            "tools": [{**SERVER_TOOL, "blocked_domains": ["blocked.example"]}],
            "tool_choice": {"type": "tool", "name": "web_search"}}


SHOWN_CALL = {"type": "server_tool_use", "id": "srvtoolu_s1", "name": "web_search", "input": {"query": "lynkr gateway"}}
SHOWN_RESULT = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_s1", "content": [
    {"type": "web_search_result", "title": "Lynkr", "url": "https://example.com/lynkr", "encrypted_content": "",
     "page_age": None}]}


@pytest.mark.parametrize("stream", [False, True])
def test_web_search_server_tool_is_run_by_the_gateway(make_app: Callable[..., Flask], mocked: Any,
                                                      searches: list[dict[str, Any]], stream: bool) -> None:
    app = make_app(web_search_endpoint=SEARCH_URL, web_search_api_key="search-key-1234")
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_s1", "web_search", query="lynkr gateway")),
                                         answer(text("Lynkr is a gateway."))])
    response = app.test_client().post("/v1/messages", json=search_request(stream), headers=CLIENT_HEADERS)
    assert response.status_code == 200
    if stream:
        events = read_events(response.get_data())
        validate_stream(events)
        starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
        assert starts == ["server_tool_use", "web_search_tool_result", "text"]
        result_start = next(e for e in events if e["type"] == "content_block_start"
                            and e["content_block"]["type"] == "web_search_tool_result")
        assert result_start["content_block"] == SHOWN_RESULT
        assert [e["delta"] for e in events if e["type"] == "content_block_delta"] == [
            {"type": "input_json_delta", "partial_json": '{"query":"lynkr gateway"}'},
            {"type": "text_delta", "text": "Lynkr is a gateway."}]
        assert events[-2]["delta"]["stop_reason"] == "end_turn"
    else:
        message = response.get_json()
        assert message["content"] == [SHOWN_CALL, SHOWN_RESULT, text("Lynkr is a gateway.")]
        assert message["stop_reason"] == "end_turn"
    assert searches == [{"query": {"q": ["lynkr gateway"], "format": ["json"]}, "auth": "Bearer search-key-1234"}]
    offered = upstream.bodies[0]["tools"]
    assert [tool["name"] for tool in offered] == ["web_search"]
    assert "type" not in offered[0]
    assert upstream.bodies[0]["tool_choice"] == {"type": "tool", "name": "web_search"}
    assert upstream.bodies[1]["tool_choice"] == {"type": "auto"}
    fed_back = upstream.bodies[1]["messages"][-1]["content"][0]
    assert fed_back == {"type": "tool_result", "tool_use_id": "toolu_s1",
                        "content": "1. Lynkr\n   https://example.com/lynkr\n   A gateway for Claude Code."}


def test_without_an_endpoint_the_server_tool_is_not_run(make_app: Callable[..., Flask], mocked: Any,
                                                        searches: list[dict[str, Any]]) -> None:
    app = make_app()
    upstream = ScriptedUpstream(mocked, [answer(text("I cannot search."))])
    response = app.test_client().post("/v1/messages", json=search_request(False), headers=CLIENT_HEADERS)
    assert response.status_code == 200
    assert searches == []
    assert len(upstream.bodies) == 1
