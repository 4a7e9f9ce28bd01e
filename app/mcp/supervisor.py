"""The MCP servers of one gunicorn worker: started, watched, restarted with backoff, stopped.

Each declared server gets one :class:`ManagedServer` and one long-lived thread that owns its
lifecycle: connect (spawn the process, run the handshake), wait for the connection to end
(pinging the server meanwhile: one that stops answering is dropped), back off, connect again.
That thread also spawns the process, so the parent-death signal bwrap and ``setpriv`` set is
tied to a thread that lives as long as the server. Request threads never do
any of this: they read the state, or wait (bounded) for a server they are about to call.

One :class:`Supervisor` per process (:func:`supervisor_for`): a forked worker never touches its
parent's servers. They are stopped when the process exits (``atexit``: a gunicorn worker leaves
through ``sys.exit`` on a graceful stop); a worker killed outright takes them with it through the
parent-death signal.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from app.config import Config
from app.logging import get_logger
from app.mcp.client import McpClient, McpError, McpUnavailable, ServerTool
from app.mcp.launch import LaunchRefused, transport_for
from app.mcp.manifest import Discovery, ManifestError, ServerSpec, TransportKind, discover
from app.mcp.transport import Transport

log = get_logger("mcp")

State = Literal["stopped", "starting", "ready", "failed", "restarting"]
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a server up this long has its backoff reset
PING_INTERVAL_S = 30.0  # how often a connected server is pinged (and how long it has to answer)
TransportFactory = Callable[[ServerSpec, Config], Transport]


@dataclass(frozen=True)
class ServerStatus:
    """A snapshot of one server for listings."""

    id: str
    transport: TransportKind
    state: State
    reason: str
    protocol_version: str | None
    tools: tuple[ServerTool, ...]
    restarts: int


class ManagedServer:
    """One declared server and the thread that keeps it running."""

    def __init__(self, spec: ServerSpec, config: Config, factory: TransportFactory = transport_for, *,
                 ping_interval_s: float = PING_INTERVAL_S) -> None:
        self.spec = spec
        self.config = config
        self.factory = factory
        self.ping_interval_s = ping_interval_s
        self.state: State = "stopped"
        self.reason = ""
        self.restarts = 0
        self.client: McpClient | None = None
        self._connecting: McpClient | None = None
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the lifecycle thread (once; later calls do nothing)."""
        with self._changed:
            if self._thread is not None or self._stopping.is_set():
                return
            self.state = "starting"
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"mcp-{self.spec.id}")
            self._thread.start()

    def stop(self) -> None:
        """Stop the server and its thread; waiting callers get :class:`McpUnavailable`."""
        self._stopping.set()
        with self._changed:
            client = self.client or self._connecting
            self._set("stopped", "the gateway is stopping")
        if client is not None:
            client.close()  # also ends a handshake in progress, so a hung server is not waited for
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def ready_client(self, timeout_s: float) -> McpClient:
        """The connected client, waiting up to ``timeout_s`` while it starts; else :class:`McpUnavailable`."""
        self.start()
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.state in ("starting", "restarting") and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            if self.state == "ready" and self.client is not None:
                return self.client
            why = self.reason or f"it did not become ready within {timeout_s:g} s"
            raise McpUnavailable(f"MCP server '{self.spec.id}' is {self.state}: {why}")

    def status(self) -> ServerStatus:
        """The server's state, reason, protocol version and tools right now."""
        with self._changed:
            client = self.client if self.state == "ready" else None
            return ServerStatus(self.spec.id, self.spec.transport, self.state, self.reason,
                                client.protocol_version if client else None,
                                tuple(client.tools) if client else (), self.restarts)

    def _set(self, state: State, reason: str = "") -> None:
        self.state, self.reason = state, reason
        self._changed.notify_all()

    def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                client = self._connect()
            except LaunchRefused as exc:
                self._announce("failed", str(exc))
                return
            except McpError as exc:
                failure = f"{exc}; retrying in {delay:g} s"
                self._announce("failed", failure)
            else:
                self._watch(client)
                client.transport.close()  # reap the process and release its pipes
                if self._stopping.is_set():
                    return
                if time.monotonic() - started >= STABLE_AFTER_S:
                    delay = BACKOFF_FIRST_S
                self.restarts += 1
                self._announce("restarting", f"{client.closed_reason}; restarting in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX_S)
            with self._changed:
                if self.state == "failed":
                    self._set("restarting", self.reason)

    def _watch(self, client: McpClient) -> None:
        """Wait until the connection ends, pinging the server while it is idle; no answer ends it."""
        while not client.wait_closed(self.ping_interval_s):
            if client.busy:  # a server working on a long call may not answer at once; it is not dead
                continue
            try:
                client.ping(self.ping_interval_s)
            except McpError as exc:
                if not client.is_closed:
                    client.close(f"it did not answer ping ({exc})")

    def _connect(self) -> McpClient:
        transport = self.factory(self.spec, self.config)
        client = McpClient(self.spec.id, transport, on_tools_changed=self._tools_changed)
        with self._changed:
            self._connecting = client
        try:
            client.connect(self.config.mcp_startup_timeout_ms / 1000)
        except McpError:
            client.close()
            with self._changed:
                self._connecting = None
            raise
        with self._changed:
            self._connecting = None
            if self._stopping.is_set():
                client.close()
                raise McpUnavailable("the gateway is stopping")
            self.client = client
            self._set("ready")
        log.info("MCP server %s ready: MCP %s, %d tools", self.spec.id, client.protocol_version, len(client.tools),
                 extra={"mcp_server": self.spec.id})
        return client

    def _announce(self, state: State, reason: str) -> None:
        with self._changed:
            if self._stopping.is_set():
                return
            self.client = None
            self._set(state, reason)
        log.warning("MCP server %s %s: %s", self.spec.id, state, reason, extra={"mcp_server": self.spec.id})

    def _tools_changed(self, client: McpClient) -> None:
        log.info("MCP server %s changed its tools: now %d", self.spec.id, len(client.tools),
                 extra={"mcp_server": self.spec.id})


class Supervisor:
    """Every declared server of this process."""

    def __init__(self, config: Config, discovery: Discovery, factory: TransportFactory = transport_for) -> None:
        self.config = config
        self.problems: tuple[ManifestError, ...] = discovery.problems
        self.servers: dict[str, ManagedServer] = {spec.id: ManagedServer(spec, config, factory)
                                                  for spec in discovery.servers}
        for problem in self.problems:
            log.warning("MCP manifest skipped: %s", problem)

    def start_all(self) -> None:
        """Start every server (in the background)."""
        for server in self.servers.values():
            server.start()

    def stop_all(self) -> None:
        """Stop every server, and wait for their processes to end."""
        threads = [threading.Thread(target=server.stop, daemon=True) for server in self.servers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)

    def settle(self, timeout_s: float) -> None:
        """Wait (up to ``timeout_s`` in all) until no server is starting: each is ready or has failed."""
        deadline = time.monotonic() + timeout_s
        for server in self.servers.values():
            with contextlib.suppress(McpError):
                server.ready_client(max(deadline - time.monotonic(), 0))

    def statuses(self) -> list[ServerStatus]:
        """Each server's snapshot, in declaration order."""
        return [server.status() for server in self.servers.values()]


_lock = threading.Lock()
_current: tuple[int, Supervisor] | None = None


def supervisor_for(config: Config, environ: Mapping[str, str] | None = None) -> Supervisor:
    """This process's supervisor for ``config``, created (and its manifests read) on first use.

    A different ``config`` (tests build many) stops the previous supervisor's servers first.
    """
    global _current
    with _lock:
        pid = os.getpid()
        # Identity first: comparing two configs field by field costs ~20 µs, and every server-mode
        # request asks with the app's own config object.
        if _current is not None and _current[0] == pid and (_current[1].config is config
                                                           or _current[1].config == config):
            return _current[1]
        previous = _current[1] if _current is not None and _current[0] == pid else None
        supervisor = Supervisor(config, discover(config, os.environ if environ is None else environ))
        _current = (pid, supervisor)
    if previous is not None:
        previous.stop_all()
    if config.mcp_start == "boot":
        supervisor.start_all()
    return supervisor


def start_at_boot(config: Config) -> None:
    """A gunicorn worker's boot: with ``MCP_START=boot`` and server-side tools on, start the servers."""
    from app.agent.service import tools_off_reason

    if config.mcp_start == "boot" and tools_off_reason(config) is None:
        supervisor_for(config)


def shutdown() -> None:
    """Stop this process's servers (registered with ``atexit``)."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current[0] == os.getpid():
        current[1].stop_all()


atexit.register(shutdown)
