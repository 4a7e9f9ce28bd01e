"""A transport :class:`~app.mcp.transport.Sink` that records what it is given, for transport tests."""

from __future__ import annotations

import threading
import time
from typing import Any

from app.mcp.jsonrpc import RequestId
from app.mcp.transport import TransportError


class RecordingSink:
    """Keeps every message, failure and close a transport delivers; ``wait`` blocks until a condition holds."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.failures: list[tuple[RequestId, TransportError]] = []
        self.reasons: list[str] = []
        self._changed = threading.Condition()

    def message(self, payload: Any) -> None:
        with self._changed:
            self.messages.append(payload)
            self._changed.notify_all()

    def failed(self, request_id: RequestId, exc: TransportError) -> None:
        with self._changed:
            self.failures.append((request_id, exc))
            self._changed.notify_all()

    def closed(self, reason: str) -> None:
        with self._changed:
            self.reasons.append(reason)
            self._changed.notify_all()

    def wait(self, *, messages: int = 0, failures: int = 0, reasons: int = 0, timeout_s: float = 10.0) -> None:
        """Block until at least that many of each arrived; AssertionError with what did arrive otherwise."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while (len(self.messages) < messages or len(self.failures) < failures
                   or len(self.reasons) < reasons):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"still waiting: messages={self.messages} failures={self.failures} "
                                         f"reasons={self.reasons}")
                self._changed.wait(left)
