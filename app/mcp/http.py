"""The Streamable HTTP transport: each message is a POST to the server's one endpoint.

The client accepts ``application/json`` and ``text/event-stream``: a server answers a request
with one JSON body or with an SSE stream carrying the response (and any notifications or
requests of its own before it). Notifications and responses get ``202 Accepted``. The session id
the server gives at ``initialize`` (``Mcp-Session-Id``) and the negotiated
``MCP-Protocol-Version`` go on every later request; a ``404`` for a session means it expired.
Each POST runs on a short-lived thread so ``send`` never waits on the network.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson
import requests

from app.anthropic.sse import SSEDecoder
from app.logging import get_logger
from app.mcp.jsonrpc import ProtocolError
from app.mcp.transport import Sink, TransportClosed, TransportError

log = get_logger("mcp.http")
SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
ACCEPT = "application/json, text/event-stream"
CONNECT_TIMEOUT_S = 10.0
LISTEN_PAUSE_S = 0.5  # before the server's event stream is opened again
LISTEN_MAX_PAUSE_S = 30.0


class HttpTransport:
    """One MCP session with a server at ``url``."""

    def __init__(self, server_id: str, url: str, *, headers: Mapping[str, str] | None = None,
                 read_timeout_s: float = 300.0) -> None:
        self.server_id = server_id
        self.url = url
        self.headers = dict(headers or {})
        self.read_timeout_s = read_timeout_s
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._http = requests.Session()
        self._sink: Sink | None = None
        self._closed = False
        self._closed_event = threading.Event()  # wakes the event-stream listener's pause on close
        self._lock = threading.Lock()

    def open(self, sink: Sink) -> None:
        """Nothing is connected until the first POST (``initialize``)."""
        self._sink = sink

    def send(self, message: dict[str, Any]) -> None:
        """POST ``message`` on a thread of its own; its answer reaches the sink."""
        if self._closed or self._sink is None:
            raise TransportClosed(f"MCP server '{self.server_id}': the HTTP session is closed")
        threading.Thread(target=self._post, args=(message, self._sink), daemon=True,
                         name=f"mcp-{self.server_id}-post").start()

    def negotiated(self, protocol_version: str) -> None:
        """Send ``MCP-Protocol-Version`` on every request from now on, and listen for the server's own messages."""
        self.protocol_version = protocol_version
        if self._sink is not None:
            threading.Thread(target=self._listen, args=(self._sink,), daemon=True,
                             name=f"mcp-{self.server_id}-listen").start()

    def close(self) -> None:
        """End the session (``DELETE`` with its id, as the specification asks) and the connection pool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closed_event.set()
        if self.session_id:
            with contextlib.suppress(requests.RequestException):
                self._http.delete(self.url, headers=self._headers(), timeout=(CONNECT_TIMEOUT_S, 5))
        self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {**self.headers, "Accept": ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol_version:
            headers[VERSION_HEADER] = self.protocol_version
        return headers

    def _post(self, message: dict[str, Any], sink: Sink) -> None:
        request_id = message.get("id") if "method" in message else None
        try:
            self._exchange(message, sink)
        except TransportError as exc:
            if request_id is not None:
                sink.failed(request_id, exc)
            else:
                log.warning("MCP server %s: %s", self.server_id, exc, extra={"mcp_server": self.server_id})

    def _exchange(self, message: dict[str, Any], sink: Sink) -> None:
        try:
            response = self._http.post(self.url, data=orjson.dumps(message), headers=self._headers(),
                                       stream=True, timeout=(CONNECT_TIMEOUT_S, self.read_timeout_s))
        except requests.RequestException as exc:
            raise TransportError(f"could not reach {self.url}: {exc.__class__.__name__}") from exc
        with response:
            session = response.headers.get(SESSION_HEADER)
            if session and message.get("method") == "initialize":
                self.session_id = session
            if response.status_code == 404 and self.session_id:
                sink.closed("the server ended the HTTP session (404)")
                raise TransportClosed("the MCP session expired")
            if response.status_code >= 400:
                raise TransportError(f"{self.url} answered HTTP {response.status_code}")
            if response.status_code == 202 or "id" not in message or "method" not in message:
                return
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            try:
                if kind == "text/event-stream":
                    self._read_events(response, sink)
                elif kind == "application/json":
                    sink.message(orjson.loads(response.content))
                else:
                    raise TransportError(f"{self.url} answered with content type '{kind or 'none'}'")
            except (orjson.JSONDecodeError, ProtocolError) as exc:
                raise TransportError(f"{self.url} sent a malformed message: {exc}") from exc
            except requests.RequestException as exc:
                raise TransportError(f"the answer from {self.url} broke off: {exc.__class__.__name__}") from exc
        # Harmless when the response came: the client ignores a failure for an answered id.
        raise TransportError(f"{self.url} ended its answer without a response")

    def _listen(self, sink: Sink) -> None:
        """The optional GET stream: notifications the server sends outside any request (tools/list_changed).

        A stream that ends is opened again, after a pause that doubles while streams keep ending
        at once (a proxy's idle timeout, a server that closes idle streams), so it never spins.
        """
        pause = LISTEN_PAUSE_S
        while not self._closed:
            opened = time.monotonic()
            try:
                with self._http.get(self.url, headers={**self._headers(), "Accept": "text/event-stream"},
                                    stream=True, timeout=(CONNECT_TIMEOUT_S, None)) as response:
                    if response.status_code != 200:
                        return  # 405: this server offers no such stream
                    self._read_events(response, sink)
            except (requests.RequestException, orjson.JSONDecodeError, ProtocolError) as exc:
                if not self._closed:
                    log.info("MCP server %s: the event stream ended (%s)", self.server_id, exc.__class__.__name__,
                             extra={"mcp_server": self.server_id})
                return
            lasted = time.monotonic() - opened
            pause = LISTEN_PAUSE_S if lasted > LISTEN_MAX_PAUSE_S else min(pause * 2, LISTEN_MAX_PAUSE_S)
            self._closed_event.wait(pause)

    @staticmethod
    def _read_events(response: requests.Response, sink: Sink) -> None:
        decoder = SSEDecoder()
        for chunk in response.iter_content(chunk_size=None):
            for event in decoder.feed(chunk):
                if event.event == "message" and event.data.strip():
                    sink.message(orjson.loads(event.data))
