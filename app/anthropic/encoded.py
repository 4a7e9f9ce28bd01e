"""A request's messages serialised once, and what is known of a message by its bytes.

Claude Code resends the whole conversation on every request, so late in a session nearly every
message is one the worker has seen before. Each message is serialised once per request
(:class:`Encoded`: compact orjson bytes); those bytes are the key of everything worked out from
the message alone — its validity, its size in the token estimate, its transcript digest, whether a
format's translation leaves it unchanged — kept in :data:`MEMO`. The key is the exact content, so
an edited message is a new key and is worked out again. The same bytes are spliced into the
upstream body (:func:`splice_body`), so nothing serialises the history twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
A = TypeVar("A")
Notes = dict[str, Any]  # what is known of one message, by aspect ("valid", "tokens", ...)
MEMO_BYTES = 64 * 1024 * 1024  # message bytes remembered per worker (a 1 MB conversation is 1 MB)
ENTRY_OVERHEAD = 256  # what an entry costs besides its key: its notes dict and their small values


class ContentMemo:
    """The notes of each distinct message, keyed by its bytes: an LRU bounded by the keys' bytes.

    A request takes the notes of all its messages at once (:meth:`notes`), under one lock; every
    request carrying the same message shares its notes dict, and fills in what it works out. An
    ``OrderedDict`` rather than ``cachetools``: its lookups and moves run in C, and a long
    conversation takes hundreds of them per request.
    """

    def __init__(self, max_bytes: int = MEMO_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Notes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def notes(self, keys: Sequence[bytes]) -> list[Notes]:
        """The notes of each key, new empty ones for keys not seen (or larger than the whole memo)."""
        out = []
        with self._lock:
            entries = self._entries
            for key in keys:
                notes = entries.get(key)
                if notes is not None:
                    entries.move_to_end(key)
                else:
                    notes = {}
                    self._add(key, notes)
                out.append(notes)
        return out

    def _add(self, key: bytes, notes: Notes) -> None:
        size = len(key) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        self._entries[key] = notes
        self._bytes += size
        while self._bytes > self.max_bytes:
            oldest, _ = self._entries.popitem(last=False)
            self._bytes -= len(oldest) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


MEMO = ContentMemo()


def noted(notes: Notes, aspect: str, compute: Callable[[A], T], message: A) -> T:
    """``notes[aspect]``, ``compute(message)`` noted on first use (two requests racing both compute
    the same value; a dict item set is atomic)."""
    if aspect in notes:
        return notes[aspect]  # type: ignore[no-any-return]
    value = notes[aspect] = compute(message)
    return value


class Encoded:
    """The messages of one request, each one's compact JSON bytes (``parts``: given, or made
    here) and notes.

    ``parts_for`` and ``notes_for`` hand them to a later step only for the very same message
    objects; a body rebuilt around them (the agent's turn with stored steps spliced in, its next
    step) is encoded by :meth:`reusing` them. Messages are never edited in place after parsing; a
    changed message is always a new object, so an object's bytes stay its bytes.
    """

    def __init__(self, messages: Sequence[Any], parts: list[bytes] | None = None, memo: ContentMemo = MEMO) -> None:
        self.messages = tuple(messages)
        self.parts = parts if parts is not None else [orjson.dumps(message) for message in self.messages]
        self.notes = memo.notes(self.parts)
        self._memo = memo

    def reusing(self, messages: Sequence[Any], also: Mapping[int, bytes] | None = None) -> Encoded:
        """``messages`` encoded, the bytes of each one that is a message encoded here (or in
        ``also``, by the id of a message object in ``messages``) taken as they are."""
        if not also and self.matches(messages):
            return self
        known = {id(message): part for message, part in zip(self.messages, self.parts, strict=True)}
        if also:
            known.update(also)
        return Encoded(messages, [known.get(id(message)) or orjson.dumps(message) for message in messages], self._memo)

    def matches(self, messages: Any) -> bool:
        """Whether ``messages`` are the messages encoded here."""
        return (isinstance(messages, list) and len(messages) == len(self.messages)
                and all(a is b for a, b in zip(messages, self.messages, strict=True)))

    def parts_for(self, messages: Any) -> list[bytes] | None:
        """The bytes of ``messages`` when they are the messages encoded here, else None."""
        return self.parts if self.matches(messages) else None

    def notes_for(self, messages: Any) -> list[Notes] | None:
        """The notes of ``messages`` when they are the messages encoded here, else None."""
        return self.notes if self.matches(messages) else None


def encoded(messages: Any) -> Encoded | None:
    """The :class:`Encoded` form of a request's ``messages``; None when they are not a list."""
    return Encoded(messages) if isinstance(messages, list) else None


def splice_body(body: dict[str, Any], originals: Sequence[Any], parts: Sequence[bytes]) -> bytes:
    """``orjson.dumps(body)``, reusing ``parts`` for the messages of ``body`` that are ``originals``.

    ``body["messages"]`` is usually ``originals`` translated: unchanged messages are the same
    objects, and their bytes are copied instead of serialised again. orjson writes a dict as its
    ``"key":value`` pairs in order, so serialising each top-level pair apart gives the same bytes.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return orjson.dumps(body)
    known = {id(message): part for message, part in zip(originals, parts, strict=True)}
    pieces = [b"{"]
    for key, value in body.items():
        if len(pieces) > 1:
            pieces.append(b",")
        if key != "messages":
            pieces.append(orjson.dumps({key: value})[1:-1])
            continue
        pieces.append(b'"messages":[')
        for position, message in enumerate(messages):
            if position:
                pieces.append(b",")
            pieces.append(known.get(id(message)) or orjson.dumps(message))
        pieces.append(b"]")
    pieces.append(b"}")
    return b"".join(pieces)
