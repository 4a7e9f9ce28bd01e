"""Inbound keys: where a client's key is read from, how it is checked and who may read what."""

from __future__ import annotations

import pytest

from app.accounting.auth import KeyChecker, key_id, presented_key
from app.accounting.keys import StoredKey
from app.errors import AuthenticationError


class Store:
    """A key store holding one database key."""

    def __init__(self, key: str, *, admin: bool = False, stored: bool = True) -> None:
        self.key, self.admin, self.stored = key, admin, stored

    def lookup(self, key: str) -> StoredKey | None:
        return StoredKey(1, "db", self.admin) if key == self.key else None

    def any_stored(self) -> bool:
        return self.stored

    def admin_ids(self) -> frozenset[str]:
        return frozenset({key_id(self.key)}) if self.admin else frozenset()


def test_key_id_is_a_short_stable_hash_that_does_not_contain_the_key() -> None:
    assert key_id("sk-one") == "key_456f1612bd25c6c8"
    assert key_id("sk-one") != key_id("sk-two")


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-api-key": " sk-one "}, "sk-one"),
    ({"authorization": "Bearer sk-two"}, "sk-two"),
    ({"authorization": "bearer   sk-two "}, "sk-two"),
    ({"x-api-key": "sk-one", "authorization": "Bearer sk-two"}, "sk-one"),
    ({"x-api-key": "", "authorization": "Bearer sk-two"}, "sk-two"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, None),
    ({"authorization": "Bearer   "}, None),
    ({"authorization": "sk-two"}, None),
    ({}, None),
])
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def test_without_keys_every_request_passes_and_everyone_reads_everything() -> None:
    checker = KeyChecker([])
    assert checker.enabled is False
    assert checker.check({}) is None
    assert checker.check({"x-api-key": "anything"}) is None
    assert checker.may_read(None, "key_other") is True


def test_a_configured_key_is_required_and_known_by_its_id() -> None:
    checker = KeyChecker(["sk-one", "sk-two"])
    assert checker.enabled is True
    assert checker.check({"authorization": "Bearer sk-two"}) == key_id("sk-two")
    with pytest.raises(AuthenticationError, match=r"^Missing API key: send it in x-api-key or Authorization"):
        checker.check({})
    with pytest.raises(AuthenticationError, match=r"^Invalid API key\.$") as wrong:
        checker.check({"x-api-key": "sk-three"})
    assert wrong.value.status == 401


def test_admin_keys_are_valid_keys_and_read_what_others_created() -> None:
    checker = KeyChecker(["sk-one"], admin_keys=["sk-admin"])
    assert checker.check({"x-api-key": "sk-admin"}) == key_id("sk-admin")
    assert checker.admin_ids == frozenset({key_id("sk-admin")})
    assert checker.may_read(key_id("sk-admin"), key_id("sk-one")) is True
    assert checker.may_read(key_id("sk-one"), key_id("sk-one")) is True
    assert checker.may_read(key_id("sk-one"), key_id("sk-admin")) is False
    assert checker.may_read(None, None) is False


def test_database_keys_are_checked_after_the_configured_ones() -> None:
    checker = KeyChecker(["sk-one"], store=Store("sk-db", admin=True))  # type: ignore[arg-type]
    assert checker.check({"x-api-key": "sk-db"}) == key_id("sk-db")
    assert checker.check({"x-api-key": "sk-one"}) == key_id("sk-one")
    assert checker.admin_ids == frozenset({key_id("sk-db")})
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        checker.check({"x-api-key": "sk-nope"})


def test_a_stored_key_alone_turns_keys_on() -> None:
    assert KeyChecker([], store=Store("sk-db")).enabled is True  # type: ignore[arg-type]
    assert KeyChecker([], store=Store("sk-db", stored=False)).enabled is False  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError, match="Missing API key"):
        KeyChecker([], store=Store("sk-db")).check({})  # type: ignore[arg-type]
