"""What the MCP client needs from a transport, whatever carries the bytes.

A transport delivers every decoded incoming message to its :class:`Sink`, reports a request it
could not deliver (``failed``) and its own end (``closed``). ``send`` never waits for an answer:
the client matches responses to requests by id, so a slow server holds only the caller waiting
on that id.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.mcp.jsonrpc import RequestId


class TransportError(Exception):
    """The transport could not carry a message (the server is unreachable, gone, or refused it)."""


class TransportClosed(TransportError):
    """The transport has ended: the process exited, the session expired, or it was closed."""


class Sink(Protocol):
    """Where a transport delivers what it receives."""

    def message(self, payload: Any) -> None:
        """One decoded JSON payload (a message or a batch)."""
        ...

    def failed(self, request_id: RequestId, exc: TransportError) -> None:
        """The request ``request_id`` was not delivered, or its answer could not be read."""
        ...

    def closed(self, reason: str) -> None:
        """The transport ended for ``reason``; nothing more will be delivered."""
        ...


class Transport(Protocol):
    """A channel to one MCP server."""

    def open(self, sink: Sink) -> None:
        """Start the channel (spawn the process, prepare the session); raises :class:`TransportError`."""
        ...

    def send(self, message: dict[str, Any]) -> None:
        """Send one message without waiting for its answer; raises :class:`TransportClosed` when ended."""
        ...

    def negotiated(self, protocol_version: str) -> None:
        """The protocol version agreed in ``initialize`` (HTTP sends it on every later request)."""
        ...

    def close(self) -> None:
        """End the channel and release what it holds; safe to call twice."""
        ...
