"""Database keys: created once, listed without secrets, revoked, looked up through a 5 s cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peewee import Database

from app.accounting.auth import KeyChecker, key_id
from app.accounting.keys import KeyStore, create_key, hash_key, list_keys, revoke_key
from app.config import Config
from app.errors import AuthenticationError
from app.storage.db import bind, db, make_database
from app.storage.migrate import migrate
from app.storage.models import ApiKey


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = make_database(Config(session_db_path=str(tmp_path / "keys.db")))
    bind(database)
    migrate(database)
    with db.connection_context():
        yield database
    database.close_all()


def test_a_created_key_is_shown_once_and_only_its_hash_is_stored(database: Database) -> None:
    row, key = create_key("ci-bot")
    assert key.startswith("sk-lynkr-")
    assert len(key) == len("sk-lynkr-") + 32
    assert ApiKey.get_by_id(row.id).key_hash == hash_key(key)
    listed = list_keys()
    assert [k["name"] for k in listed] == ["ci-bot"]
    assert listed[0]["key_id"] == key_id(key)
    assert key not in str(listed)
    assert hash_key(key) not in str(listed)


def test_an_active_name_cannot_be_reused_until_it_is_revoked(database: Database) -> None:
    create_key("ci-bot")
    with pytest.raises(ValueError, match="already named"):
        create_key("ci-bot")
    assert revoke_key("ci-bot") == 1
    create_key("ci-bot")


def test_revoke_by_id_and_an_unknown_name_revokes_nothing(database: Database) -> None:
    row, _ = create_key("laptop")
    assert revoke_key("nobody") == 0
    assert revoke_key(str(row.id)) == 1
    assert revoke_key(str(row.id)) == 0
    assert list_keys()[0]["revoked_at"] is not None


def test_the_checker_accepts_a_database_key_under_its_key_id(database: Database) -> None:
    _, key = create_key("ci-bot")
    checker = KeyChecker(["sk-env-key-1234"], store=KeyStore())
    assert checker.check({"x-api-key": key}) == key_id(key)
    assert checker.check({"x-api-key": "sk-env-key-1234"}) == key_id("sk-env-key-1234")
    with pytest.raises(AuthenticationError):
        checker.check({"x-api-key": "sk-lynkr-wrong"})


def test_database_keys_alone_turn_authentication_on(database: Database) -> None:
    clock = FakeClock()
    checker = KeyChecker([], store=KeyStore(clock=clock))
    assert checker.check({}) is None
    create_key("first")
    clock.now += 5.01
    with pytest.raises(AuthenticationError, match="Missing API key"):
        checker.check({})


def test_a_revocation_is_seen_within_five_seconds(database: Database) -> None:
    clock = FakeClock()
    _, key = create_key("ci-bot", admin=True)
    checker = KeyChecker([], store=KeyStore(clock=clock))
    assert checker.check({"authorization": f"Bearer {key}"}) == key_id(key)
    assert key_id(key) in checker.admin_ids
    revoke_key("ci-bot")
    clock.now += 4.9
    assert checker.check({"x-api-key": key}) == key_id(key)  # cached, still inside the 5 s
    clock.now += 0.2
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        checker.check({"x-api-key": key})
    assert key_id(key) not in checker.admin_ids


def test_a_lookup_racing_the_revocation_expires_five_seconds_after_its_read(database: Database) -> None:
    """A worker reads the key just before the revocation commits and stores the answer after it:
    the answer still expires five seconds after the read, so no request starting later than five
    seconds after the revocation is let in."""
    clock = FakeClock()
    _, key = create_key("ci-bot")
    store = KeyStore(clock=clock)
    fetch = store._fetch

    def slow_fetch(digest: str) -> object:
        found = fetch(digest)  # read before the revocation...
        revoke_key("ci-bot")
        clock.now += 1.0  # ...stored a second later
        return found

    store._fetch = slow_fetch  # type: ignore[method-assign]
    assert store.lookup(key) is not None
    store._fetch = fetch  # type: ignore[method-assign]
    clock.now += 3.99
    assert store.lookup(key) is not None, "still cached 4.99 s after the read"
    clock.now += 0.02
    assert store.lookup(key) is None, "5.01 s after the read, however late it was stored"
