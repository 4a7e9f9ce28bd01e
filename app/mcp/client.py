"""An MCP client over any :class:`~app.mcp.transport.Transport`: the lifecycle and the tool calls.

``connect`` runs the handshake: ``initialize`` offering :data:`PROTOCOL_VERSION` (the newest
handshake revision of the current ``mcp`` SDK), accepting an older revision the server answers
with when it is one this client speaks, then ``notifications/initialized`` and a first
``tools/list`` (following ``nextCursor``). ``notifications/tools/list_changed`` refreshes the
list in the background. Every request has its own timeout; one that runs out is abandoned with
``notifications/cancelled`` so the server can stop the work.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from app.logging import get_logger
from app.mcp import jsonrpc
from app.mcp.jsonrpc import Notification, Request, RequestId, Response
from app.mcp.transport import Transport, TransportError

log = get_logger("mcp.client")

PROTOCOL_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MAX_TOOL_PAGES = 100  # a server whose cursor never ends must not loop us forever


class McpError(Exception):
    """A call to an MCP server did not produce a result; the message says why."""


class McpTimeout(McpError):
    """The server did not answer within the time allowed (the request was cancelled)."""


class McpCancelled(McpError):
    """The caller gave up (its client went away); the server was told to stop."""


class McpUnavailable(McpError):
    """The server is not running, could not be reached, or went away during the call."""


class IncompatibleServer(McpError):
    """The server answered ``initialize`` with a protocol version or shape this client does not speak."""


@dataclass(frozen=True)
class ServerTool:
    """One tool a server lists."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    response: Response | None = None
    failure: McpError | None = None


class McpClient:
    """One connection to one server. Thread-safe: many callers may wait on it at once."""

    def __init__(self, server_id: str, transport: Transport, *,
                 on_tools_changed: Callable[[McpClient], None] | None = None) -> None:
        self.server_id = server_id
        self.transport = transport
        self.on_tools_changed = on_tools_changed
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.tools: list[ServerTool] = []
        self.closed_reason: str | None = None
        self._closed = threading.Event()
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, _Pending] = {}
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------

    def connect(self, timeout_s: float) -> None:
        """Open the transport, run the handshake and list the tools; raises :class:`McpError`."""
        try:
            self.transport.open(self)
        except TransportError as exc:
            raise McpUnavailable(str(exc)) from exc
        try:
            answer = self.request("initialize", {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "lynkr", "version": _lynkr_version()},
            }, timeout_s, cancellable=False)
        except McpUnavailable as exc:
            raise McpUnavailable(f"the handshake failed: {self.closed_reason or exc}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("protocolVersion"), str):
            raise IncompatibleServer("the server's initialize result has no protocolVersion")
        version = answer["protocolVersion"]
        if version not in SUPPORTED_VERSIONS:
            raise IncompatibleServer(f"the server speaks MCP {version}; Lynkr speaks {', '.join(SUPPORTED_VERSIONS)}")
        self.protocol_version = version
        self.server_info = _object(answer.get("serverInfo"))
        self.capabilities = _object(answer.get("capabilities"))
        self.transport.negotiated(version)
        self.notify("notifications/initialized")
        self.tools = self.list_tools(timeout_s)

    def close(self, reason: str = "the gateway closed the connection") -> None:
        """Stop the transport; callers still waiting get :class:`McpUnavailable` with ``reason``."""
        self.closed(reason)
        self.transport.close()

    @property
    def is_closed(self) -> bool:
        """Whether the connection has ended."""
        return self._closed.is_set()

    @property
    def busy(self) -> bool:
        """Whether a request is waiting for its answer."""
        with self._lock:
            return bool(self._pending)

    def wait_closed(self, timeout_s: float | None = None) -> bool:
        """Block until the connection ends (True) or ``timeout_s`` passes (False)."""
        return self._closed.wait(timeout_s)

    # --- requests ------------------------------------------------------------------------

    def list_tools(self, timeout_s: float) -> list[ServerTool]:
        """Every tool the server lists, following ``nextCursor`` page by page."""
        tools: list[ServerTool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = self.request("tools/list", {"cursor": cursor} if cursor else None, timeout_s)
            if not isinstance(page, dict) or not isinstance(page.get("tools"), list):
                raise IncompatibleServer("the server's tools/list result has no tools array")
            tools += [tool for tool in map(_server_tool, page["tools"]) if tool is not None]
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return tools

    def call_tool(self, name: str, arguments: dict[str, Any], timeout_s: float,
                  cancelled: threading.Event | None = None) -> dict[str, Any]:
        """The raw ``CallToolResult`` of ``tools/call``; ``cancelled`` set meanwhile cancels it."""
        answer = self.request("tools/call", {"name": name, "arguments": arguments}, timeout_s,
                              cancelled=cancelled)
        if not isinstance(answer, dict):
            raise IncompatibleServer("the server's tools/call result is not an object")
        return answer

    def ping(self, timeout_s: float) -> None:
        """Raises :class:`McpError` unless the server answers ``ping`` in time."""
        self.request("ping", None, timeout_s)

    def request(self, method: str, params: dict[str, Any] | None, timeout_s: float, *,
                cancellable: bool = True, cancelled: threading.Event | None = None) -> Any:
        """Send a request and wait for its result; raises :class:`McpError` subclasses."""
        request_id = next(self._ids)
        pending = _Pending()
        with self._lock:
            if self.closed_reason is not None:
                raise McpUnavailable(f"MCP server '{self.server_id}' is not running: {self.closed_reason}")
            self._pending[request_id] = pending
        try:
            self.transport.send(jsonrpc.request(request_id, method, params))
        except TransportError as exc:
            self._forget(request_id)
            raise McpUnavailable(str(exc)) from exc
        if not _wait(pending.done, timeout_s, cancelled):
            self._forget(request_id)
            if cancelled is not None and cancelled.is_set():
                self._cancel(request_id, "the client went away")
                raise McpCancelled(f"{method} on MCP server '{self.server_id}' was cancelled: the client went away")
            if cancellable:
                self._cancel(request_id, f"no answer within {timeout_s:g} s")
            raise McpTimeout(f"MCP server '{self.server_id}' did not answer {method} within {timeout_s:g} s; "
                             "the request was cancelled")
        if pending.failure is not None:
            raise pending.failure
        assert pending.response is not None
        if pending.response.error is not None:
            raise McpError(f"MCP server '{self.server_id}' refused {method}: {pending.response.error}")
        return pending.response.result

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification; a transport that has ended is not an error here."""
        try:
            self.transport.send(jsonrpc.notification(method, params))
        except TransportError as exc:
            log.info("MCP server %s: %s not sent (%s)", self.server_id, method, exc,
                     extra={"mcp_server": self.server_id})

    # --- the transport's sink ------------------------------------------------------------

    def message(self, payload: Any) -> None:
        """Dispatch what the server sent: answers, its own requests, notifications."""
        for message in jsonrpc.parse_batch(payload):
            if isinstance(message, Response):
                self._resolve(message)
            elif isinstance(message, Request):
                self._answer(message)
            else:
                self._notified(message)

    def failed(self, request_id: RequestId, exc: TransportError) -> None:
        """A request could not be delivered or answered; its caller stops waiting."""
        with self._lock:
            pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.failure = McpUnavailable(f"MCP server '{self.server_id}': {exc}")
            pending.done.set()

    def closed(self, reason: str) -> None:
        """The transport ended: every waiting caller gets :class:`McpUnavailable` with ``reason``."""
        with self._lock:
            if self.closed_reason is None:
                self.closed_reason = reason
            waiting, self._pending = self._pending, {}
        for pending in waiting.values():
            pending.failure = McpUnavailable(f"MCP server '{self.server_id}' stopped during the call: {reason}")
            pending.done.set()
        self._closed.set()

    def _resolve(self, response: Response) -> None:
        if response.id is None:
            log.warning("MCP server %s sent an error without an id: %s", self.server_id, response.error,
                        extra={"mcp_server": self.server_id})
            return
        with self._lock:
            pending = self._pending.pop(response.id, None)
        if pending is not None:  # else: an answer to a request we stopped waiting for
            pending.response = response
            pending.done.set()

    def _answer(self, request: Request) -> None:
        # This client declares no capabilities (no roots, sampling or elicitation): only ping is served.
        reply = (jsonrpc.result(request.id, {}) if request.method == "ping"
                 else jsonrpc.error(request.id, jsonrpc.METHOD_NOT_FOUND, f"method not supported: {request.method}"))
        try:
            self.transport.send(reply)
        except TransportError as exc:
            log.info("MCP server %s: answer to %s not sent (%s)", self.server_id, request.method, exc,
                     extra={"mcp_server": self.server_id})

    def _notified(self, notification: Notification) -> None:
        if notification.method == "notifications/tools/list_changed":
            # Not on this thread: it is the one that will read the tools/list answer.
            threading.Thread(target=self._refresh_tools, daemon=True, name=f"mcp-{self.server_id}-tools").start()
        elif notification.method == "notifications/message":
            params = notification.params or {}
            log.info("[%s] %s", self.server_id, params.get("data"), extra={"mcp_server": self.server_id})

    def _refresh_tools(self) -> None:
        try:
            self.tools = self.list_tools(timeout_s=30)
        except McpError as exc:
            log.warning("MCP server %s: the changed tool list could not be read: %s", self.server_id, exc,
                        extra={"mcp_server": self.server_id})
            return
        if self.on_tools_changed is not None:
            self.on_tools_changed(self)

    def _forget(self, request_id: RequestId) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _cancel(self, request_id: RequestId, reason: str) -> None:
        self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})


def _server_tool(item: Any) -> ServerTool | None:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        return None
    schema = item.get("inputSchema")
    description = item.get("description") or item.get("title") or ""
    return ServerTool(item["name"], str(description),
                      schema if isinstance(schema, dict) else {"type": "object", "properties": {}})


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _lynkr_version() -> str:
    try:
        return metadata.version("lynkr")
    except metadata.PackageNotFoundError:
        return "0"


CANCEL_POLL_S = 0.05


def _wait(done: threading.Event, timeout_s: float, cancelled: threading.Event | None) -> bool:
    """Wait for ``done`` up to ``timeout_s``, giving up early once ``cancelled`` is set."""
    if cancelled is None:
        return done.wait(timeout_s)
    deadline = time.monotonic() + timeout_s
    while not cancelled.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return done.is_set()
        if done.wait(min(remaining, CANCEL_POLL_S)):
            return True
    return done.is_set()
