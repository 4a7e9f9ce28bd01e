"""JSON-RPC 2.0 framing: what the client sends and how incoming messages are told apart."""

from __future__ import annotations

from typing import Any

import pytest

from app.mcp import jsonrpc
from app.mcp.jsonrpc import Notification, ProtocolError, Request, Response


def test_builders_write_the_wire_form() -> None:
    assert jsonrpc.request(1, "tools/list") == {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert jsonrpc.request("a", "tools/call", {"name": "x"}) == {
        "jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}}
    assert jsonrpc.notification("notifications/initialized") == {
        "jsonrpc": "2.0", "method": "notifications/initialized"}
    assert jsonrpc.result(3, {}) == {"jsonrpc": "2.0", "id": 3, "result": {}}
    assert jsonrpc.error(4, jsonrpc.METHOD_NOT_FOUND, "no") == {
        "jsonrpc": "2.0", "id": 4, "error": {"code": -32601, "message": "no"}}


def test_parse_tells_requests_notifications_and_responses_apart() -> None:
    assert jsonrpc.parse({"jsonrpc": "2.0", "id": 7, "method": "ping"}) == Request(7, "ping")
    assert jsonrpc.parse({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}) == Notification(
        "notifications/tools/list_changed")
    assert jsonrpc.parse({"jsonrpc": "2.0", "id": 7, "result": {"ok": 1}}) == Response(7, result={"ok": 1})


def test_an_error_response_carries_code_message_and_data() -> None:
    parsed = jsonrpc.parse({"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "bad", "data": [1]}})
    assert isinstance(parsed, Response)
    assert parsed.id == 2
    assert parsed.error is not None
    assert (parsed.error.code, parsed.error.message, parsed.error.data) == (-32602, "bad", [1])
    assert str(parsed.error) == "bad (JSON-RPC error -32602)"


def test_a_batch_is_parsed_in_order() -> None:
    assert jsonrpc.parse_batch([{"jsonrpc": "2.0", "id": 1, "result": 1},
                                {"jsonrpc": "2.0", "method": "x"}]) == [Response(1, result=1), Notification("x")]


@pytest.mark.parametrize("message", [
    {"id": 1, "result": 1},                                  # no jsonrpc member
    {"jsonrpc": "1.0", "id": 1, "result": 1},
    {"jsonrpc": "2.0", "id": True, "result": 1},              # a bool is not an id
    {"jsonrpc": "2.0", "id": 1.5, "method": "x"},
    {"jsonrpc": "2.0", "method": 3},
    {"jsonrpc": "2.0", "method": "x", "params": [1, 2]},      # MCP params are objects
    {"jsonrpc": "2.0", "id": 1, "error": "broken"},
    {"jsonrpc": "2.0", "id": 1},
    "text",
])
def test_anything_else_is_a_protocol_error(message: Any) -> None:
    with pytest.raises(ProtocolError):
        jsonrpc.parse(message)
