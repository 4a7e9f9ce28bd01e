"""Slow request bodies: a deadline on every read, and a cap on how many threads may wait for one.

A gthread worker reads a request body on the request's own thread, from a blocking socket: a client
that sends its headers and then trickles its body (or stops) would hold that thread as long as it
likes, and a few dozen such connections — no key needed — stop a worker from answering anything,
health checks included. Two bounds:

- a read of the body waits at most ``LYNKR_BODY_READ_TIMEOUT_MS`` for the next byte, then the
  request ends as ``408 timeout_error`` (:class:`RequestTimeoutError`);
- only ``slow_limit`` threads of a worker may wait that long at once (:class:`WaitSlots`). A read
  that finds them all taken waits :data:`PROBATION_S` at most: a normal body, already on the socket
  with its headers, is read at once; a slow one ends as 408 and frees its thread.

A read that failed marks gunicorn's body as failed, so the connection is closed rather than drained,
and its read side is shut so that closing it does not linger.
nginx in front adds ``client_body_timeout`` and full request buffering (see the README).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.errors import RequestTimeoutError

PROBATION_S = 0.1
_TOO_SLOW = ("The request body did not arrive in time (LYNKR_BODY_READ_TIMEOUT_MS, or too many "
             "connections sending slowly at once).")


class WaitSlots:
    """How many threads of this worker may wait the full deadline for a body at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self._taken >= self.limit:
                return False
            self._taken += 1
            return True

    def give(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._taken -= 1

    @property
    def taken(self) -> int:
        """Slots in use now."""
        return self._taken


class DeadlineInput:
    """``wsgi.input`` whose reads wait at most ``timeout_s`` (with a slot) or :data:`PROBATION_S`."""

    def __init__(self, stream: Any, sock: socket.socket, timeout_s: float, slots: WaitSlots) -> None:
        self._stream = stream
        self._sock = sock
        self._timeout_s = timeout_s
        self._slots = slots

    def read(self, size: int | None = -1) -> bytes:
        """Read like the wrapped stream, within the deadline."""
        data: bytes = self._guarded(self._stream.read, size)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """Read a line like the wrapped stream, within the deadline."""
        data: bytes = self._guarded(self._stream.readline, size)
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines like the wrapped stream, within the deadline."""
        lines: list[bytes] = self._guarded(self._stream.readlines, hint)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _guarded(self, read: Callable[[Any], Any], size: Any) -> Any:
        slotted = self._slots.take()
        self._sock.settimeout(self._timeout_s if slotted else PROBATION_S)
        try:
            return read(size)
        except OSError as exc:  # the timeout, or a socket that broke
            # Nothing more is read from this client. Shutting the read side also makes gunicorn's
            # lingering close (done on the worker's main thread, up to 2 s per connection) return
            # at once, so a crowd of slow clients cannot stall the event loop instead.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)
            raise RequestTimeoutError(_TOO_SLOW) from exc
        finally:
            if slotted:
                self._slots.give()


class BodyDeadline:
    """WSGI middleware applying :class:`DeadlineInput` to requests with a body under gunicorn.

    Without ``gunicorn.socket`` in the environ (``flask run``, the test client) it does nothing.
    The socket goes back to blocking before the response is written.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, timeout_s: float, slow_limit: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.slots = WaitSlots(slow_limit)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        has_body = environ.get("CONTENT_LENGTH") not in (None, "", "0") or "chunked" in environ.get(
            "HTTP_TRANSFER_ENCODING", "").lower()
        if not isinstance(sock, socket.socket) or not has_body:
            return self.app(environ, start_response)
        environ["wsgi.input"] = DeadlineInput(environ["wsgi.input"], sock, self.timeout_s, self.slots)
        try:
            return self.app(environ, start_response)
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
