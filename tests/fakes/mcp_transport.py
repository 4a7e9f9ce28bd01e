"""An in-memory MCP transport whose "server" answers each request from a table of handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.mcp import jsonrpc
from app.mcp.client import PROTOCOL_VERSION
from app.mcp.transport import Sink, TransportClosed

Handler = Callable[[dict[str, Any]], Any]


class ScriptedTransport:
    """Answers each request at once with ``handlers[method](params)``; keeps everything sent."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.sent: list[dict[str, Any]] = []
        self.sink: Sink | None = None
        self.version: str | None = None
        self.closed = False

    def open(self, sink: Sink) -> None:
        self.sink = sink

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise TransportClosed("closed")
        self.sent.append(message)
        if "method" in message and "id" in message and self.sink is not None:
            handler = self.handlers.get(message["method"])
            if handler is not None:
                self.sink.message(jsonrpc.result(message["id"], handler(message.get("params") or {})))

    def negotiated(self, protocol_version: str) -> None:
        self.version = protocol_version

    def close(self) -> None:
        self.closed = True


def initialize(version: str = PROTOCOL_VERSION) -> Handler:
    """An ``initialize`` handler answering with ``version``."""
    return lambda params: {"protocolVersion": version, "capabilities": {"tools": {"listChanged": True}},
                           "serverInfo": {"name": "scripted", "version": "0"}}
