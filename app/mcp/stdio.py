"""The stdio transport: the server is a child process speaking newline-delimited JSON-RPC.

Each message is one line of UTF-8 JSON on the child's stdin/stdout. The child's stderr is its
log: every line goes to Lynkr's log with the server id (and is redacted like every log line).
The child runs in a process group of its own, so stopping it stops whatever it started; it is
stopped as the MCP specification asks — stdin closed first, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from app.logging import get_logger, redact
from app.mcp.jsonrpc import ProtocolError
from app.mcp.transport import Sink, TransportClosed, TransportError

log = get_logger("mcp.stdio")
STOP_GRACE_S = 2.0  # how long a server gets to exit after stdin closes, then after SIGTERM
# How long an exited server's stderr may take to reach its end. Its pipe closes with the process, so
# this is only waited in full when a child it left behind holds the pipe (a launcher's grandchild);
# on a loaded machine reading the last line can take longer than the stop grace.
LAST_WORDS_S = 5.0


class StdioTransport:
    """One child process per transport; ``open`` spawns it, ``close`` stops it."""

    def __init__(self, server_id: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> None:
        self.server_id = server_id
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._write_lock = threading.Lock()
        self._closing = False
        self._last_error = ""
        self._stderr_reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id, once spawned."""
        return self.process.pid if self.process else None

    def open(self, sink: Sink) -> None:
        """Spawn the child and start reading its stdout and stderr."""
        try:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise TransportError(f"could not start {self.argv[0]}: {exc.strerror or exc}") from exc
        except ValueError as exc:  # a NUL byte in an argument or an environment value
            raise TransportError(f"could not start {self.argv[0]}: {exc}") from exc
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        # stderr's reader first: the stdout reader joins it when the child exits.
        stderr_reader = threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True,
                                         name=f"mcp-{self.server_id}-err")
        stderr_reader.start()
        self._stderr_reader = stderr_reader
        threading.Thread(target=self._read_stdout, args=(self.process.stdout, sink), daemon=True,
                         name=f"mcp-{self.server_id}-out").start()

    def send(self, message: dict[str, Any]) -> None:
        """Write one line to the child's stdin."""
        process = self.process
        if process is None or process.stdin is None or self._closing:
            raise TransportClosed(f"MCP server '{self.server_id}' is not running")
        line = orjson.dumps(message) + b"\n"
        try:
            with self._write_lock:
                process.stdin.write(line)
                process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            # A child that exited is why its input broke: its exit (and last words) say more.
            exited = self._exit_reason(if_running="")
            raise TransportClosed(f"MCP server '{self.server_id}' stopped: {exited}" if exited else
                                  f"MCP server '{self.server_id}' is not reading its input ({exc})") from exc

    def negotiated(self, protocol_version: str) -> None:
        """Nothing to do: stdio carries no per-message version header."""

    def close(self) -> None:
        """Stop the child: close stdin, then SIGTERM its group, then SIGKILL it."""
        self._closing = True
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError, ValueError), self._write_lock:
                process.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
            try:
                process.wait(timeout=STOP_GRACE_S)
                break
            except subprocess.TimeoutExpired:
                continue
        # The server may have left children in its group that outlive it; none may stay.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def _read_stdout(self, stdout: IO[bytes], sink: Sink) -> None:
        with stdout:
            for line in stdout:
                if line.strip():
                    self._deliver(line, sink)
        sink.closed(self._exit_reason())

    def _deliver(self, line: bytes, sink: Sink) -> None:
        try:
            payload = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("MCP server %s wrote a line that is not JSON to stdout: %.200s", self.server_id,
                        line.decode("utf-8", errors="replace").rstrip(), extra={"mcp_server": self.server_id})
            return
        try:
            sink.message(payload)
        except ProtocolError as exc:
            log.warning("MCP server %s: %s", self.server_id, exc, extra={"mcp_server": self.server_id})

    def _read_stderr(self, stderr: IO[bytes]) -> None:
        with stderr:
            self._log_stderr(stderr)

    def _log_stderr(self, stderr: IO[bytes]) -> None:
        for line in stderr:
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                self._last_error = text
                log.info("[%s] %s", self.server_id, text, extra={"mcp_server": self.server_id})

    def _exit_reason(self, if_running: str = "it closed its output") -> str:
        """Why the child is gone: its exit and last words, or ``if_running`` if it has not exited."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return if_running
        if self._closing:
            return "it was stopped"
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=LAST_WORDS_S)  # its last words are the reason
        # The reason reaches the model (and the client) as a tool result: no secret may ride along.
        said = f" (its last words: {redact(self._last_error[:300])})" if self._last_error else ""
        if code < 0:
            return f"it was killed by signal {-code}{said}"
        return f"it exited with code {code}{said}"
