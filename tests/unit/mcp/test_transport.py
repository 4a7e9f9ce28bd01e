"""The transport contract every MCP transport keeps: its error types and its open/send/close lifecycle."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from app.mcp.http import HttpTransport
from app.mcp.stdio import StdioTransport
from app.mcp.transport import Transport, TransportClosed, TransportError
from tests.fakes.mcp_sink import RecordingSink

NOTE = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Transport:
    """Each transport, typed as the protocol (mypy checks that both satisfy it)."""
    if request.param == "stdio":
        reader = "import sys\nfor _ in sys.stdin: pass"
        return StdioTransport("srv", [sys.executable, "-c", reader], env={"PATH": os.environ["PATH"]}, cwd=tmp_path)
    with socket.socket() as probe:  # a port nothing listens on: the lifecycle never needs an answer
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return HttpTransport("srv", f"http://127.0.0.1:{port}/mcp")


def test_a_closed_transport_is_a_transport_error() -> None:
    assert issubclass(TransportClosed, TransportError)
    assert issubclass(TransportError, Exception)
    assert not issubclass(TransportError, OSError)  # callers catch it by its own type, not an OS error's


def test_send_before_open_is_transport_closed(transport: Transport) -> None:
    with pytest.raises(TransportClosed, match=r"^MCP server 'srv'"):
        transport.send(NOTE)


def test_close_before_open_and_twice_is_harmless(transport: Transport) -> None:
    transport.close()
    transport.close()


def test_after_close_send_is_transport_closed(transport: Transport) -> None:
    sink = RecordingSink()
    transport.open(sink)
    transport.negotiated("2025-11-25")
    transport.close()
    transport.close()
    with pytest.raises(TransportClosed, match=r"^MCP server 'srv'"):
        transport.send(NOTE)
    assert sink.messages == []
