"""Parsing a body whose history was parsed before: only the turns after the resent ones.

Claude Code resends the whole conversation on every request, serialised the same way each time
(compact JSON, the ``messages`` array first or early). When the bytes of a body's ``messages``
array begin with the bytes of messages parsed from an earlier body, those messages are taken as
parsed then (the same objects, their bytes and notes), and only the rest of the body — the new
turns, the system prompt, the tools — is parsed. A conversation is remembered only when its
``messages`` bytes are exactly each message's compact JSON joined by commas (how orjson, and
Claude Code's ``JSON.stringify``, write them), which is what makes a byte comparison a message
comparison; any other body is parsed whole.

The result is always what ``orjson.loads`` gives for the whole body: a body whose layout does
not fit (no top-level ``messages`` array where the bytes say, a top-level ``""`` key) is parsed
whole. Parsed messages are shared between requests, so they must never be edited in place (no
code does: every rewrite builds new dicts).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from app.anthropic.encoded import Encoded

MESSAGES_KEY = b'"messages":['
KEY_BYTES = 64  # the bytes after the array's start that group conversations (how their first turn begins)
PER_KEY = 8  # conversations remembered per group
HISTORY_BYTES = 8 * 1024 * 1024  # request bytes remembered per worker (each keeps its parsed messages too)

Parts = Callable[[list[Any]], list[bytes] | None]  # each new message's bytes, None when one is too deep


@dataclass(frozen=True, eq=False)
class _Seen:
    """One body's messages: its bytes, where the array starts, and where each message ends in it."""

    raw: bytes
    start: int
    ends: list[int]  # offset (from ``start``) just past each message
    encoded: Encoded


class ResentHistory:
    """The messages of recent bodies, grouped by how their first turn begins: an LRU bounded by
    the bodies' bytes. A body is matched against each conversation of its group."""

    def __init__(self, max_bytes: int = HISTORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._groups: OrderedDict[bytes, list[_Seen]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def parse(self, raw: bytes, parts: Parts) -> tuple[dict[str, Any], Encoded, int] | None:
        """``raw`` parsed, reusing the longest run of messages seen before, with its messages
        encoded and how many were reused; None when none is (parse it whole). ``parts`` serialises
        the new messages and checks their depth; the caller checks the rest of the body's."""
        start = raw.find(MESSAGES_KEY)
        if start < 0:
            return None
        start += len(MESSAGES_KEY)
        with self._lock:
            group = list(self._groups.get(raw[:start + KEY_BYTES], ()))
        count, seen = max(((_resent(raw, start, seen), seen) for seen in group), default=(0, None),
                          key=lambda found: found[0])
        if seen is None or count == 0:
            return None
        cut = start + seen.ends[count - 1]
        if raw.find(b'"":', cut) >= 0 or raw.find(b'"":', 0, start) >= 0:  # "" is the rest's wrapper key
            return None
        try:
            head = orjson.loads(raw[:start] + b"]}")
            rest = orjson.loads(b'{"":[' + (raw[cut + 1:] if raw[cut:cut + 1] == b"," else raw[cut:]))
        except orjson.JSONDecodeError:
            return None  # not the layout it seemed: the whole parse decides
        if not isinstance(head, dict) or list(head)[-1:] != ["messages"] or "messages" in rest:
            return None
        new = rest.pop("")
        new_parts = parts(new)
        if new_parts is None:
            return None
        head["messages"] = [*seen.encoded.messages[:count], *new]
        head.update(rest)
        return head, Encoded(head["messages"], [*seen.encoded.parts[:count], *new_parts]), count

    def remember(self, raw: bytes, given: Encoded, resent: int = 0) -> None:
        """Keep ``raw``'s messages for the bodies that resend them, when its bytes are their parts;
        it replaces the conversation of its group that began with the same turn. The first
        ``resent`` messages are known to be (:meth:`parse` compared them)."""
        parts = given.parts
        start = raw.find(MESSAGES_KEY)
        if start < 0 or not parts or len(raw) > self.max_bytes:
            return
        start += len(MESSAGES_KEY)
        ends = [end - 1 for end in accumulate(len(part) + 1 for part in parts)]
        unchecked = b",".join(parts[resent:]) + b"]"
        if 0 < resent < len(parts):
            unchecked = b"," + unchecked
        if not raw.startswith(unchecked, start + (ends[resent - 1] if resent else 0)):
            return
        entry = _Seen(raw, start, ends, given)
        key = raw[:start + KEY_BYTES]
        with self._lock:
            kept: list[_Seen] = []
            for seen in self._groups.pop(key, []):
                if seen.encoded.parts[0] != given.parts[0] and len(kept) < PER_KEY - 1:
                    kept.append(seen)
                else:
                    self._bytes -= len(seen.raw)
            self._bytes += len(raw)
            self._groups[key] = [entry, *kept]
            while self._bytes > self.max_bytes:
                _, evicted = self._groups.popitem(last=False)
                self._bytes -= sum(len(seen.raw) for seen in evicted)


def _resent(raw: bytes, start: int, seen: _Seen) -> int:
    """How many leading messages of ``raw`` (its array at ``start``) are byte for byte ``seen``'s.

    The whole history first, then all but the newest turn (where Claude Code's ``cache_control``
    marker was), then a binary search; each step compares bytes in C.
    """
    region = memoryview(seen.raw)[seen.start:]
    ends = seen.ends

    def same(count: int) -> bool:
        # A delimiter must follow: ``1`` is not resent in ``[12]``.
        end = start + ends[count - 1]
        return raw.startswith(region[:ends[count - 1]], start) and raw[end:end + 1] in (b",", b"]")

    total = len(ends)
    for count in (total, total - 1):
        if count > 0 and same(count):
            return count
    low, high = 0, total - 2  # same(low) holds (vacuously at 0); same(high + 1) does not
    while low < high:
        middle = (low + high + 1) // 2
        if same(middle):
            low = middle
        else:
            high = middle - 1
    return low
