"""Inbound keys kept in the database, besides ``LYNKR_API_KEYS``.

A key is ``sk-lynkr-`` and 32 random URL-safe characters, shown once when it is created; only
its SHA-256 (hex) is stored. :class:`KeyStore` answers "is this key valid, is it an admin key"
through a short cache, so a request costs at most one indexed lookup every few seconds and a
revocation is seen everywhere within ``ttl`` seconds: an answer expires ``ttl`` seconds after the
database was read, not after it was stored, so a lookup racing the revocation cannot outlive it.
The id a key is known by in sessions and usage rows stays :func:`app.accounting.auth.key_id` of
the key, whichever list it comes from.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TLRUCache

from app.storage.models import ApiKey, utcnow

PREFIX = "sk-lynkr-"
CACHE_TTL_S = 5.0
_ANY = "\0any"  # cache slot for "was any database key stored?"


def generate_key() -> str:
    """A new random key: ``sk-lynkr-`` and 32 URL-safe characters (192 bits)."""
    return PREFIX + secrets.token_urlsafe(24)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def id_from_hash(key_hash: str) -> str:
    """The :func:`app.accounting.auth.key_id` of the key whose SHA-256 hex is ``key_hash``."""
    return "key_" + key_hash[:16]


@dataclass(frozen=True)
class StoredKey:
    """What a valid database key grants."""

    id: int
    name: str
    admin: bool


def create_key(name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """Store a new key named ``name``; returns the row and the key (the only time it is seen).

    Raises ValueError when an active key already has that name.
    """
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name")
    if ApiKey.select().where(ApiKey.name == name, ApiKey.revoked_at.is_null()).exists():
        raise ValueError(f"an active key is already named {name!r}; revoke it or pick another name")
    key = generate_key()
    row = ApiKey.create(name=name, key_hash=hash_key(key), admin=admin, created_at=utcnow())
    return row, key


def list_keys() -> list[dict[str, Any]]:
    """Every stored key, oldest first: id, name, key id, admin, created, revoked — never a hash."""
    return [{"id": row.id, "name": row.name, "key_id": id_from_hash(row.key_hash), "admin": row.admin,
             "created_at": _iso(row.created_at), "revoked_at": _iso(row.revoked_at)}
            for row in ApiKey.select().order_by(ApiKey.id)]


def revoke_key(id_or_name: str) -> int:
    """Revoke the active key with this id, or every active key with this name; how many were revoked."""
    match = ApiKey.name == id_or_name
    if id_or_name.isdigit():
        match = match | (ApiKey.id == int(id_or_name))
    query = ApiKey.update(revoked_at=utcnow()).where(match, ApiKey.revoked_at.is_null())
    return query.execute()


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


class KeyStore:
    """Database keys looked up by hash through a TTL cache (``clock`` is injectable for tests)."""

    def __init__(self, ttl: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic,
                 maxsize: int = 10_000) -> None:
        self._clock = clock
        # Entries are (read at, answer); each expires ``ttl`` after its read.
        self._cache: TLRUCache[str, tuple[float, Any]] = TLRUCache(
            maxsize, lambda _slot, entry, _now: entry[0] + ttl, timer=clock)
        self._lock = threading.Lock()
        self._admin_ids: set[str] = set()

    def lookup(self, key: str) -> StoredKey | None:
        """The active key ``key`` is, or None (unknown and revoked keys are cached alike)."""
        digest = hash_key(key)
        found = self._cached(digest, lambda: self._fetch(digest))
        if found is not None and found.admin:
            self._admin_ids.add(id_from_hash(digest))
        return found

    def any_stored(self) -> bool:
        """Whether any key was ever stored: then every /v1 request must carry a valid key.

        Revoked keys count, so revoking the last key locks the gateway rather than opening it.
        """
        return bool(self._cached(_ANY, lambda: ApiKey.select().exists()))

    def admin_ids(self) -> frozenset[str]:
        """Key ids of the active admin database keys seen by :meth:`lookup`."""
        return frozenset(self._admin_ids)

    def _cached(self, slot: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            # One read: an entry can expire between a membership test and a lookup.
            cached = self._cache.get(slot)
        if cached is not None:
            return cached[1]
        read_at = self._clock()
        value = load()
        with self._lock:
            self._cache[slot] = (read_at, value)
        return value

    def _fetch(self, digest: str) -> StoredKey | None:
        row = ApiKey.get_or_none(ApiKey.key_hash == digest, ApiKey.revoked_at.is_null())
        if row is None:
            self._admin_ids.discard(id_from_hash(digest))
            return None
        return StoredKey(id=row.id, name=row.name, admin=bool(row.admin))
