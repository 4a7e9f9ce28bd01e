"""The models describe the tables the migrations create, with their keys and cascades."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database, IntegrityError

from app.config import Config
from app.storage.db import bind, close_all, db, make_database
from app.storage.migrate import migrate
from app.storage.models import ALL_MODELS, ApiKey, Session, ToolExecution, Turn, UsageCounter, utcnow

PG_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")


def mismatches(database: Database) -> list[str]:
    """Model fields without a column in their migrated table, as ``table.column``."""
    missing = []
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {column.name for column in database.get_columns(table)}
        missing += [f"{table}.{field.column_name}" for field in model._meta.sorted_fields
                    if field.column_name not in columns]
    return missing


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_every_model_field_has_its_column_on_sqlite(sqlite_db: Database) -> None:
    assert mismatches(sqlite_db) == []


@pytest.mark.postgres
def test_every_model_field_has_its_column_on_postgres() -> None:
    database = make_database(Config(database_url=PG_URL))
    migrate(database)
    bind(database)
    try:
        with db.connection_context():
            assert mismatches(database) == []
    finally:
        close_all()


def test_deleting_a_session_deletes_its_turns(sqlite_db: Database) -> None:
    session = Session.create(id="s1")
    first = Turn.create(session=session, position=0, role="user", content="hi", chain_hash="h0")
    Turn.create(session=session, parent=first, position=1, role="assistant", content="yo", chain_hash="h1")
    assert [t.position for t in session.turns.order_by(Turn.position)] == [0, 1]
    assert Turn.get(Turn.chain_hash == "h1").source == "client"
    session.delete_instance()
    assert Turn.select().count() == 0


def test_one_chain_hash_per_session(sqlite_db: Database) -> None:
    session = Session.create(id="s1")
    Turn.create(session=session, position=0, role="user", content="hi", chain_hash="h0")
    with pytest.raises(IntegrityError):
        Turn.create(session=session, position=0, role="user", content="hi", chain_hash="h0")


def test_one_tool_execution_per_session_key_and_tool_use_id(sqlite_db: Database) -> None:
    ToolExecution.create(session_id="s1", tool_use_id="toolu_1", name="Read", input="{}", result='"x"')
    ToolExecution.create(session_id="s2", tool_use_id="toolu_1", name="Read", input="{}", result='"x"')
    ToolExecution.create(session_id="s1", owner="key_a", tool_use_id="toolu_1", name="Read", input="{}", result='"x"')
    with pytest.raises(IntegrityError):  # without a key too: the owner is '', not NULL
        ToolExecution.create(session_id="s1", tool_use_id="toolu_1", name="Read", input="{}", result='"y"')
    with pytest.raises(IntegrityError):
        ToolExecution.create(session_id="s1", owner="key_a", tool_use_id="toolu_1", name="Read", input="{}",
                             result='"y"')


def test_key_hashes_are_unique_and_counters_keyed_by_scope_and_period(sqlite_db: Database) -> None:
    ApiKey.create(name="a", key_hash="0" * 64)
    with pytest.raises(IntegrityError):
        ApiKey.create(name="b", key_hash="0" * 64)
    UsageCounter.create(scope="key:a", period="day")
    UsageCounter.create(scope="key:a", period="week", used=3)
    assert UsageCounter.get(UsageCounter.scope == "key:a", UsageCounter.period == "day").used == 0
    with pytest.raises(IntegrityError):
        UsageCounter.insert(scope="key:a", period="day").execute()
