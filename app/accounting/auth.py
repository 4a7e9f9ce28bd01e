"""Inbound API keys: ``x-api-key`` or ``Authorization: Bearer``, compared in constant time.

Keys come from ``LYNKR_API_KEYS`` / ``LYNKR_ADMIN_KEYS`` and, when a :class:`~app.accounting.keys.KeyStore`
is given, from the ``api_keys`` table (looked up by hash). Either way a key is known by
:func:`key_id`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from app.errors import AuthenticationError

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from app.accounting.keys import KeyStore


def key_id(key: str) -> str:
    """A stable, non-secret identifier for a key (what usage rows and logs carry)."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def presented_key(headers: Mapping[str, str] | Headers) -> str | None:
    """The key a client sent, from ``x-api-key`` or a bearer ``Authorization`` header."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class KeyChecker:
    """Checks presented keys against the configured list, then the database's keys."""

    def __init__(self, keys: Iterable[str], admin_keys: Iterable[str] = (), store: KeyStore | None = None) -> None:
        admins = list(admin_keys)
        self._keys = [k.encode() for k in [*keys, *admins]]
        self._admin_ids = frozenset(key_id(k) for k in admins)
        self.store = store

    @property
    def admin_ids(self) -> frozenset[str]:
        """Key ids of admin keys: the configured ones and database admin keys seen recently."""
        if self.store is None:
            return self._admin_ids
        return self._admin_ids | self.store.admin_ids()

    @property
    def enabled(self) -> bool:
        """Whether any key is configured or stored (otherwise every request is let through)."""
        return bool(self._keys) or (self.store is not None and self.store.any_stored())

    def check(self, headers: Mapping[str, str] | Headers) -> str | None:
        """The key id of a valid key; None when keys are off; raises when required and wrong."""
        if not self.enabled:
            return None
        key = presented_key(headers)
        if key is None:
            raise AuthenticationError("Missing API key: send it in x-api-key or Authorization: Bearer.")
        candidate = key.encode()
        matched = False
        for known in self._keys:  # no early exit: every key is compared every time
            matched |= hmac.compare_digest(candidate, known)
        if not matched and (self.store is None or self.store.lookup(key) is None):
            raise AuthenticationError("Invalid API key.")
        return key_id(key)

    def may_read(self, caller: str | None, owner: str | None) -> bool:
        """Whether the caller's key may read what ``owner``'s key created (open mode: all)."""
        return not self.enabled or caller in self.admin_ids or (caller is not None and caller == owner)
