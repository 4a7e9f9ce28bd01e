"""What the fake upstreams record and the behaviours they share (see :mod:`tests.fakes.http_base`).

:class:`RecordedRequest` is one request a fake received; :class:`Pause` is a marker inside a
streamed reply; :class:`Hang` and :class:`JsonReply` are behaviours every fake that has them
plays alike; :class:`ErrorReply` and :class:`StreamedReply` are the bases of each fake's own
error and streamed behaviours.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pause:
    """A marker inside a streamed reply's items: wait this long before the next item."""

    seconds: float


@dataclass
class Hang:
    """Never answers; closes the connection once ``release`` is set (or the fake stops)."""

    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class JsonReply:
    """A JSON answer; ``body=None`` is the fake's short text answer echoing the request's model.

    ``cut_after`` sends only that many bytes of the body (the headers announce all of it), then
    drops the socket: a body that breaks off after the headers.
    """

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut_after: int | None = None


@dataclass
class ErrorReply:
    """An error status with the fake's error body, or ``raw_body`` as is, after ``delay`` seconds.
    Each fake adds the fields of its error body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict, kw_only=True)
    delay: float = field(default=0.0, kw_only=True)
    raw_body: bytes | None = field(default=None, kw_only=True)


@dataclass
class StreamedReply:
    """What a streamed answer's behaviour has besides its items: ``head_delay`` waits before the
    status line, ``die`` closes the socket after the last item without ending the chunked body."""

    head_delay: float = field(default=0.0, kw_only=True)
    die: bool = field(default=False, kw_only=True)
    status: int = field(default=200, kw_only=True)
    headers: dict[str, str] = field(default_factory=dict, kw_only=True)


@dataclass
class RecordedRequest:
    """One request a fake received, and what became of its answer (``rejected``: why the fake
    refused it, when it did)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    behaviour: str = ""
    rejected: str | None = None
    completed: bool = False
    disconnected_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)
