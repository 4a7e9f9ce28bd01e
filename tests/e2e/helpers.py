"""Helpers for the e2e tests: the running gateway's handle, SSE reading, waiting on conditions."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from app.anthropic.sse import SSEDecoder

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class Gateway:
    """A running ``lynkr serve``: its master process, port and log file."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def shutdown_budget_s(self) -> float:
        """How long a clean stop may take: pre-stop delay, grace period, and slack."""
        prestop = int(self.env.get("LYNKR_PRESTOP_DELAY_MS", "5000")) / 1000
        graceful = int(self.env.get("GRACEFUL_SHUTDOWN_TIMEOUT", "30000")) / 1000
        return prestop + graceful + 10

    def log_text(self) -> str:
        """Everything the gateway has written so far."""
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[str]:
        """Every non-empty line of the log."""
        return [line for line in self.log_text().splitlines() if line.strip()]

    def group_alive(self) -> bool:
        """Whether any process of the gateway's process group still exists."""
        if self.proc.poll() is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, sig: int, timeout: float | None = None) -> int:
        """Send ``sig`` to the master and wait for it to exit; returns the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout or self.shutdown_budget_s())

    def accepting(self) -> bool:
        """Whether the port accepts a TCP connection."""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def post(self, body: dict[str, Any], *, headers: dict[str, str] | None = None, stream: bool = False,
             timeout: float = 30) -> requests.Response:
        """``POST /v1/messages`` on a fresh connection, closed when the answer ends.

        ``Connection: close`` because requests leaves a streamed response's pooled connection
        open until garbage collection, which holds gunicorn's graceful stop for its keep-alive.
        """
        return requests.post(self.url + "/v1/messages", data=json.dumps(body),
                             headers={**ANTHROPIC_HEADERS, "Connection": "close", **(headers or {})},
                             stream=stream, timeout=timeout)


@dataclass
class SSERead:
    """A stream as the client saw it: the raw bytes and the decoded events."""

    raw: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        """Event types in order."""
        return [event["type"] for event in self.events]

    def text(self) -> str:
        """All text deltas joined."""
        return "".join(e["delta"].get("text", "") for e in self.events if e["type"] == "content_block_delta")


def read_sse(response: requests.Response, *, until: Callable[[SSERead], bool] | None = None) -> SSERead:
    """Read an SSE response to its end (or until ``until`` says stop), checking each frame.

    Each event's ``event:`` name must equal its data's ``type``.
    """
    result = SSERead()
    decoder = SSEDecoder()
    for chunk in _chunks(response):
        result.raw += chunk
        for frame in decoder.feed(chunk):
            data = frame.json()
            assert frame.event == data["type"], f"event name {frame.event!r} != type {data['type']!r}"
            result.events.append(data)
        if until is not None and until(result):
            break
    return result


def _chunks(response: requests.Response) -> Iterable[bytes]:
    return response.iter_content(chunk_size=None)


def message_body(text: str = "Say hello.", *, stream: bool = False, model: str = "claude-sonnet-5-5",
                 max_tokens: int = 256, **extra: Any) -> dict[str, Any]:
    """A minimal Messages request."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                            "messages": [{"role": "user", "content": text}], **extra}
    if stream:
        body["stream"] = True
    return body


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse every non-empty line as a JSON object; raises on the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"log line {number} is not JSON: {line!r}") from exc
        assert isinstance(record, dict), f"log line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records
