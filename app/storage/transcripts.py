"""Session transcripts, stored incrementally.

Claude Code resends the whole conversation on every request. Each turn is stored once, keyed
by a *chain hash* over it and every turn before it, so one lookup finds how much of a resent
history is already stored; only the turns after that are written, each pointing at its parent.
A rewritten history (compaction, an edited turn) diverges at some turn and continues as a new
branch from the last shared one — N turns give about N rows, never N²/2.

``cache_control`` markers are ignored when hashing: Claude Code moves them to the newest turn
on every request. A turn's own digest is kept in its message's notes
(:mod:`app.anthropic.encoded`), so a resent history costs one small hash per turn, and only the
new turns are made canonical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from peewee import Node, Query

from app.anthropic.encoded import Notes, noted
from app.storage.db import db
from app.storage.models import Session, Turn, utcnow
from app.storage.prepared import InsertRow, Prepared

_LOOKUP_CHUNK = 256  # hashes per lookup; a power of two (lookups are padded to one)
_TAIL = 8  # the newest turns looked up first: a resent history is stored but for its last turns
_NO_HASH = ""  # pads a lookup: never a chain hash


def _touch_session(session_id: Node, owner: Node, now: Node, *, shape: bool) -> Query:
    """Create the session, or touch it if ``owner`` (NULL when ``shape``) owns it."""
    owned = Session.owner.is_null() if shape else Session.owner == owner
    return (Session.insert(id=session_id, owner=owner, created_at=now, updated_at=now)
            .on_conflict(conflict_target=[Session.id], update={Session.updated_at: now}, where=owned))


def _lookup_turns(session_id: Node, *hashes: Node, shape: None) -> Query:
    return Turn.select(Turn.id, Turn.chain_hash).where((Turn.session == session_id) & Turn.chain_hash.in_(hashes))


def _claim_resent_answer(source: Node, session_id: Node, chain_hash: Node, stored_as: Node, *, shape: None) -> Query:
    return Turn.update(source=source).where((Turn.session == session_id) & (Turn.chain_hash == chain_hash)
                                            & (Turn.source == stored_as))


_TOUCH_SESSION = Prepared(_touch_session)
_LOOKUP_TURNS = Prepared(_lookup_turns)
_CLAIM_RESENT_ANSWER = Prepared(_claim_resent_answer)
_TURN_ROW = InsertRow(Turn, ignore_conflicts=True)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def canonical_turn(message: dict[str, Any]) -> bytes:
    """The bytes a turn is hashed and stored as (string content as one text block)."""
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    return orjson.dumps({"role": message.get("role"), "content": _canonical(content)},
                        option=orjson.OPT_SORT_KEYS)


def turn_digest(message: dict[str, Any]) -> bytes:
    """The SHA-256 of a turn's canonical bytes."""
    return hashlib.sha256(canonical_turn(message)).digest()


def chain_hashes(messages: Sequence[dict[str, Any]], notes: Sequence[Notes] = ()) -> list[str]:
    """The chain hash of each turn, in order.

    A turn with ``notes`` (the first ``len(notes)``) keeps its digest there, and its chain hash
    with the hash before it: a history resent after the same prefix is looked up, not hashed.
    """
    out = []
    previous = ""
    for position, message in enumerate(messages):
        note = notes[position] if position < len(notes) else None
        chained = note.get("chain") if note is not None else None
        if chained is not None and chained[0] == previous:
            digest = chained[1]
        else:
            inner = noted(note, "turn_digest", turn_digest, message) if note is not None \
                else turn_digest(message)
            digest = hashlib.sha256(previous.encode() + inner).hexdigest()
            if note is not None:
                note["chain"] = (previous, digest)
        out.append(digest)
        previous = digest
    return out


def record_exchange(session_id: str, owner: str | None, messages: list[dict[str, Any]],
                    response: dict[str, Any] | None, notes: Sequence[Notes] = ()) -> int:
    """Store the turns of ``messages`` (and the answer) not yet stored; returns rows written.

    ``notes``, when given, are those of ``messages`` (:class:`app.anthropic.encoded.Encoded`).
    """
    turns = list(messages)
    if response and response.get("content"):
        turns.append({"role": "assistant", "content": response["content"]})
    hashed = chain_hashes(turns, notes)
    sources = ["client"] * len(messages) + ["response"] * (len(turns) - len(messages))
    with db.atomic():
        if not _ensure_session(session_id, owner):
            return 0
        known = _newest_stored(session_id, hashed)
        start = max((i + 1 for i, h in enumerate(hashed) if h in known), default=0)
        if start == len(turns) > len(messages):
            # The client resent this answer (through another worker or instance) before this
            # exchange was recorded: it is stored, but as the client's.
            _CLAIM_RESENT_ANSWER.execute(db.obj, ["response", session_id, hashed[-1], "client"])
        parent = known.get(hashed[start - 1]) if start else None
        written = 0
        for position in range(start, len(hashed)):
            parent = _insert_turn(session_id, parent, position, turns[position]["role"],
                                  canonical_turn(turns[position]), hashed[position], sources[position])
            written += 1
    return written


def _ensure_session(session_id: str, owner: str | None) -> bool:
    """Create or touch the session; False when it belongs to another key (nothing is written)."""
    now = Session.updated_at.db_value(utcnow())
    cursor = _TOUCH_SESSION.execute(db.obj, [session_id, owner, now], shape=owner is None)
    return cursor.rowcount > 0


def _newest_stored(session_id: str, hashes: list[str]) -> dict[str, int]:
    """Stored turns among ``hashes``, the newest of them included (writing starts after it).

    A turn is stored only after every turn before it, so when one of the last few is stored the
    newest stored one is among them, and the rest of the history need not be looked up.
    """
    tail = _stored(session_id, hashes[-_TAIL:])
    return tail if tail or len(hashes) <= _TAIL else _stored(session_id, hashes)


def _stored(session_id: str, hashes: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[i:i + _LOOKUP_CHUNK]
        # Padded to a power of two, so a growing conversation reuses a few rendered lookups.
        padded = chunk + [_NO_HASH] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
        rows = _LOOKUP_TURNS.execute(db.obj, [session_id, *padded])
        found.update({digest: turn_id for turn_id, digest in rows})
    return found


def _insert_turn(session_id: str, parent: int | None, position: int, role: str, canonical: bytes,
                 digest: str, source: str) -> int:
    turn_id = _TURN_ROW.execute(db.obj, {
        "session": session_id, "parent": parent, "position": position, "role": role,
        "content": canonical.decode(), "chain_hash": digest, "source": source, "created_at": utcnow()})
    if turn_id is not None:
        return turn_id
    # A concurrent request of the same session wrote it first.
    return Turn.get((Turn.session == session_id) & (Turn.chain_hash == digest)).id


def session_turns(session_id: str) -> list[dict[str, Any]]:
    """The newest branch of a session, oldest turn first."""
    leaf = (Turn.select().where(Turn.session == session_id)
            .order_by(Turn.id.desc()).first())
    branch = []
    while leaf is not None:
        branch.append({"position": leaf.position, "role": leaf.role, "source": leaf.source,
                       "content": orjson.loads(leaf.content)["content"],
                       "created_at": leaf.created_at.isoformat() if hasattr(leaf.created_at, "isoformat")
                       else str(leaf.created_at)})
        leaf = Turn.get_or_none(Turn.id == leaf.parent_id) if leaf.parent_id else None
    return list(reversed(branch))
