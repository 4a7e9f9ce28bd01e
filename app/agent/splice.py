"""Server steps kept per session and spliced back into the next upstream request.

The client only sees the assistant message the loop showed it (progress text, the answer,
client tool calls). Claude Code resends that message in its next request; the model must see
what it really did instead. Each such message gets an *anchor* — the hash of its tool_use ids,
or of its text when it has none — under which the loop's real messages are stored. On the next
request every resent assistant message whose anchor is known is replaced by those messages,
and server tool results owed alongside client results go to the front of the next user turn.

Once a server tool has run in a session, every later request of it carries those steps. Each
worker keeps them parsed (:class:`TraceCache`, by session and anchor, while the stored row is the
same), so a request reads only the versions of its own anchors (from an index) and the traces
it has not seen, and the steps go upstream as the same objects with the bytes they had
(:class:`Spliced`). Traces are stored per session *and* API key (:func:`trace_session`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cachetools import LRUCache
from peewee import IntegrityError, Node, Query

from app.anthropic.encoded import Notes, noted
from app.logging import get_logger
from app.storage.db import db
from app.storage.models import AgentTrace
from app.storage.prepared import Prepared

log = get_logger("agent.splice")
_NO_ANCHOR = ""  # pads a lookup: never an anchor


TRACE_CACHE_BYTES = 32 * 1024 * 1024  # what the kept traces may hold per worker (estimated, Trace.size)
LOOKUP_CHUNK = 256  # anchors per lookup; a power of two (lookups are padded to one)
# A parsed step holds ~2x its JSON (str and dict overhead) besides the bytes kept to resend it,
# plus a few hundred bytes per block object: measured with sys.getsizeof, 2-6.5x the JSON.
PARSED_BYTES_PER_JSON_BYTE = 3
PARSED_BYTES_PER_BLOCK = 400


def trace_session(session_id: str | None, owner: str | None) -> str | None:
    """The key a session's traces are stored under: the session as one API key sees it, so two
    keys sending the same session id never get each other's server steps (file contents)."""
    if not session_id:
        return None
    return hashlib.sha256(f"{owner or ''}\0{session_id}".encode()).hexdigest()


def _versions(session_id: Node, *anchors: Node, shape: None) -> Query:
    # Answered from the agent_traces_versions index (migration 0006), never the trace rows.
    return (AgentTrace.select(AgentTrace.anchor, AgentTrace.id, AgentTrace.created_at)
            .where((AgentTrace.session_id == session_id) & AgentTrace.anchor.in_(anchors)))


def _session_traces(session_id: Node, *anchors: Node, shape: None) -> Query:
    return (AgentTrace.select(AgentTrace.anchor, AgentTrace.id, AgentTrace.created_at, AgentTrace.messages,
                              AgentTrace.results)
            .where((AgentTrace.session_id == session_id) & AgentTrace.anchor.in_(anchors)))


# Run on every request of a session in server mode: rendered once (app.storage.prepared).
_VERSIONS = Prepared(_versions)
_SESSION_TRACES = Prepared(_session_traces)


@dataclass(frozen=True)
class Trace:
    """One stored trace, parsed: its steps (each with its compact JSON) and owed results.

    ``version`` is the row's id and creation time: a trace stored again under the same anchor
    is a new row (SQLite may reuse a deleted row's id, never with the same time).
    """

    version: tuple[Any, Any]
    steps: tuple[dict[str, Any], ...]
    parts: tuple[bytes, ...]
    results: tuple[dict[str, Any], ...]
    size: int

    @classmethod
    def parse(cls, version: tuple[Any, Any], steps: str, results: str) -> Trace:
        """The trace of a stored row."""
        parsed = orjson.loads(steps)
        parts = tuple(orjson.dumps(step) for step in parsed)
        owed = tuple(orjson.loads(results))
        json_bytes = sum(map(len, parts)) + len(results.encode())
        blocks = sum(len(content) if isinstance(content := step.get("content"), list) else 1
                     for step in parsed) + len(owed)
        size = json_bytes * PARSED_BYTES_PER_JSON_BYTE + (blocks + len(parsed)) * PARSED_BYTES_PER_BLOCK
        return cls(version, tuple(parsed), parts, owed, size)


class TraceCache:
    """Parsed traces of one worker by ``(session, anchor)``: an LRU bounded by an estimate of the
    memory they hold (:attr:`Trace.size`).

    Steps are shared by every request that splices them, so they are never edited in place
    (as no parsed message is).
    """

    def __init__(self, max_bytes: int = TRACE_CACHE_BYTES) -> None:
        self._traces: LRUCache[tuple[str, str], Trace] = LRUCache(max_bytes, getsizeof=lambda trace: trace.size)
        self._lock = threading.Lock()

    def get(self, session_id: str, key: str, version: tuple[Any, Any]) -> Trace | None:
        """The trace stored as ``version``, when it is kept."""
        with self._lock:
            trace = self._traces.get((session_id, key))
        return trace if trace is not None and trace.version == version else None

    def put(self, session_id: str, key: str, trace: Trace) -> None:
        """Keep ``trace`` (unless it alone is larger than the cache)."""
        if trace.size <= self._traces.maxsize:
            with self._lock:
                self._traces[(session_id, key)] = trace


@dataclass
class Spliced:
    """The upstream's messages, the bytes of the stored steps among them (by object id), and the
    anchors of the request that have a stored trace."""

    messages: list[dict[str, Any]]
    parts: dict[int, bytes] = field(default_factory=dict)
    stored: frozenset[str] = frozenset()


def anchor(message: dict[str, Any]) -> str | None:
    """The key of an assistant message as the client will resend it, or None if it has no content."""
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    ids = sorted(str(b.get("id")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use")
    if ids:
        basis = "ids:" + ",".join(ids)
    else:
        text = " ".join("".join(b.get("text", "") for b in blocks
                                if isinstance(b, dict) and b.get("type") == "text").split())
        if not text:
            return None
        basis = "text:" + text
    return hashlib.sha256(basis.encode()).hexdigest()


def save_trace(session_id: str, shown: dict[str, Any], messages: list[dict[str, Any]],
               results: list[dict[str, Any]]) -> None:
    """Keep the real ``messages`` behind the ``shown`` assistant message of ``session_id``."""
    key = anchor(shown)
    if key is None:
        return
    try:
        with db.connection_context():
            AgentTrace.delete().where((AgentTrace.session_id == session_id) & (AgentTrace.anchor == key)).execute()
            AgentTrace.create(session_id=session_id, anchor=key, messages=orjson.dumps(messages).decode(),
                              results=orjson.dumps(results).decode())
    except IntegrityError:
        log.info("agent trace for session %s was stored by a concurrent request", session_id)


def forget_trace(session_id: str, shown: dict[str, Any]) -> None:
    """Drop the trace stored under the anchor of ``shown``: an answer that ran no server tool but
    looks like an earlier one that did (the same short text) must not be replaced by its steps."""
    key = anchor(shown)
    if key is not None:
        with db.connection_context():
            AgentTrace.delete().where((AgentTrace.session_id == session_id) & (AgentTrace.anchor == key)).execute()


def splice(session_id: str | None, messages: list[dict[str, Any]], notes: Sequence[Notes] | None = None,
           cache: TraceCache | None = None) -> Spliced:
    """``messages`` with every known assistant message replaced by the steps behind it.

    ``session_id`` is the :func:`trace_session` key. ``notes`` (one per message,
    :class:`~app.anthropic.encoded.Encoded`) keep each message's anchor, so a resent history is not
    hashed again. The versions of the traces of the messages' anchors are read first (from an
    index alone) and whole traces only for those not in ``cache``.
    """
    if not session_id:
        return Spliced(messages)
    anchors = {i: noted(notes[i], "anchor", anchor, m) if notes is not None else anchor(m)
               for i, m in enumerate(messages) if m.get("role") == "assistant"}
    wanted = {a for a in anchors.values() if a}
    if not wanted:
        return Spliced(messages)
    traces = _traces(session_id, wanted, cache)
    if not traces:
        return Spliced(messages)
    # Two shown messages can share an anchor (the same short answer twice). The stored trace is the
    # newest one's (a later answer without server steps drops it: forget_trace), so only the last
    # of them is replaced (steps twice would repeat tool_use ids).
    last = {key: i for i, key in anchors.items() if key}
    out: list[dict[str, Any]] = []
    parts: dict[int, bytes] = {}
    owed: tuple[dict[str, Any], ...] = ()
    for i, message in enumerate(messages):
        key = anchors.get(i)
        trace = traces.get(key) if key and last[key] == i else None
        if trace is not None:
            out.extend(trace.steps)
            parts.update(zip(map(id, trace.steps), trace.parts, strict=True))
            owed = trace.results
            continue
        if owed and message.get("role") == "user":
            message = {**message, "content": [*owed, *_blocks(message.get("content"))]}
        owed = ()
        out.append(message)
    return Spliced(out, parts, frozenset(traces))


def _traces(session_id: str, wanted: set[str], cache: TraceCache | None) -> dict[str, Trace]:
    """The stored traces of ``session_id`` among the anchors ``wanted``, from ``cache`` when unchanged."""
    found: dict[str, Trace] = {}
    with db.connection_context():
        versions = {key: (row_id, created) for key, row_id, created in _lookup(_VERSIONS, session_id, sorted(wanted))}
        for key, version in versions.items():
            kept = cache.get(session_id, key, version) if cache is not None else None
            if kept is not None:
                found[key] = kept
        missing = [key for key in versions if key not in found]
        for key, row_id, created, steps, results in _lookup(_SESSION_TRACES, session_id, missing):
            found[key] = trace = Trace.parse((row_id, created), steps, results)
            if cache is not None:
                cache.put(session_id, key, trace)
    return found


def _lookup(query: Prepared, session_id: str, anchors: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` for ``anchors``, in chunks padded to a power of two (so a session's
    lookups reuse a few rendered queries)."""
    for start in range(0, len(anchors), LOOKUP_CHUNK):
        chunk = anchors[start:start + LOOKUP_CHUNK]
        padded = [*chunk, *[_NO_ANCHOR] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))]
        yield from query.execute(db.obj, [session_id, *padded])


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content or [])
