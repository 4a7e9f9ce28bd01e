"""The client's protocol logic against a scripted transport: negotiation, pagination, the server's own requests."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from app.mcp import jsonrpc
from app.mcp.client import PROTOCOL_VERSION, IncompatibleServer, McpCancelled, McpClient, McpError, McpUnavailable
from tests.fakes.mcp_transport import ScriptedTransport, initialize


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"does {name}", "inputSchema": {"type": "object"}}


def paged_tools(params: dict[str, Any]) -> dict[str, Any]:
    pages: dict[str | None, dict[str, Any]] = {
        None: {"tools": [tool("a"), tool("b")], "nextCursor": "p2"},
        "p2": {"tools": [tool("c"), {"description": "no name"}], "nextCursor": "p3"},
        "p3": {"tools": [tool("d")]},
    }
    return pages[params.get("cursor")]


def test_the_handshake_sends_initialize_then_initialized_and_follows_every_cursor() -> None:
    transport = ScriptedTransport({"initialize": initialize(), "tools/list": paged_tools})
    client = McpClient("s", transport)
    client.connect(timeout_s=1)
    assert [t.name for t in client.tools] == ["a", "b", "c", "d"]
    assert transport.version == PROTOCOL_VERSION
    first = transport.sent[0]
    assert first["method"] == "initialize"
    assert first["params"]["protocolVersion"] == "2025-11-25"
    assert first["params"]["capabilities"] == {}
    assert first["params"]["clientInfo"]["name"] == "lynkr"
    assert [m.get("method") for m in transport.sent[1:]] == [
        "notifications/initialized", "tools/list", "tools/list", "tools/list"]
    assert [m.get("params") for m in transport.sent[2:]] == [None, {"cursor": "p2"}, {"cursor": "p3"}]


def test_an_older_revision_the_server_answers_with_is_accepted() -> None:
    transport = ScriptedTransport({"initialize": initialize("2025-03-26"), "tools/list": lambda p: {"tools": []}})
    client = McpClient("s", transport)
    client.connect(timeout_s=1)
    assert (client.protocol_version, transport.version) == ("2025-03-26", "2025-03-26")


def test_a_revision_lynkr_does_not_speak_is_refused() -> None:
    client = McpClient("s", ScriptedTransport({"initialize": initialize("2023-01-01")}))
    with pytest.raises(IncompatibleServer, match=r"the server speaks MCP 2023-01-01; Lynkr speaks 2025-11-25, "):
        client.connect(timeout_s=1)


def test_a_server_error_names_the_method() -> None:
    transport = ScriptedTransport({})

    def refuse(message: dict[str, Any]) -> None:
        transport.sent.append(message)
        assert transport.sink is not None
        transport.sink.message(jsonrpc.error(message["id"], jsonrpc.INVALID_PARAMS, "bad name"))

    transport.send = refuse  # type: ignore[method-assign]
    client = McpClient("s", transport)
    transport.open(client)
    with pytest.raises(McpError, match=r"MCP server 's' refused tools/call: bad name \(JSON-RPC error -32602\)"):
        client.call_tool("x", {}, 1)


def test_the_server_s_ping_is_answered_and_other_requests_refused() -> None:
    transport = ScriptedTransport({})
    client = McpClient("s", transport)
    transport.open(client)
    client.message({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
    client.message({"jsonrpc": "2.0", "id": "srv-2", "method": "sampling/createMessage", "params": {}})
    assert transport.sent == [
        {"jsonrpc": "2.0", "id": "srv-1", "result": {}},
        {"jsonrpc": "2.0", "id": "srv-2", "error": {"code": -32601,
                                                    "message": "method not supported: sampling/createMessage"}},
    ]


def test_a_closed_connection_fails_waiting_and_later_calls_with_the_reason() -> None:
    transport = ScriptedTransport({})
    client = McpClient("s", transport)
    transport.open(client)
    client.closed("it exited with code 2")
    with pytest.raises(McpUnavailable, match=r"MCP server 's' is not running: it exited with code 2"):
        client.ping(1)
    assert client.is_closed


def test_a_call_whose_client_went_away_is_cancelled_at_once() -> None:
    transport = ScriptedTransport({"initialize": initialize(), "tools/list": paged_tools})
    client = McpClient("s", transport)
    transport.open(client)
    gone = threading.Event()
    threading.Timer(0.1, gone.set).start()
    started = time.monotonic()
    with pytest.raises(McpCancelled, match=r"tools/call on MCP server 's' was cancelled: the client went away"):
        client.call_tool("slow", {}, timeout_s=30, cancelled=gone)  # the scripted server never answers it
    assert time.monotonic() - started < 2
    cancel = transport.sent[-1]
    assert cancel["method"] == "notifications/cancelled"
    assert cancel["params"]["reason"] == "the client went away"
    assert cancel["params"]["requestId"] == transport.sent[-2]["id"]
