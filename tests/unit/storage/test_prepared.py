"""Prepared queries: rendered by peewee once per dialect and shape, then only bound."""

from __future__ import annotations

from typing import Any

import pytest
from peewee import Node, PostgresqlDatabase, Query, SqliteDatabase

from app.storage.models import Session
from app.storage.prepared import InsertRow, Prepared


def sqlite_with_sessions() -> SqliteDatabase:
    database = SqliteDatabase(":memory:")
    with database.bind_ctx([Session]):
        database.create_tables([Session])
    return database


def test_a_query_is_rendered_once_per_dialect_shape_and_arity() -> None:
    builds: list[Any] = []

    def build(*ids: Node, shape: bool) -> Query:
        builds.append(shape)
        query = Session.select(Session.id).where(Session.id.in_(ids))
        return query.where(Session.owner.is_null()) if shape else query

    sqlite = sqlite_with_sessions()
    sqlite.execute_sql("INSERT INTO sessions (id, owner, created_at, updated_at) VALUES "
                       "('a', NULL, '2026-01-01', '2026-01-01'), ('b', 'k', '2026-01-01', '2026-01-01')")
    prepared = Prepared(build)
    assert sorted(prepared.execute(sqlite, ["a", "b"], shape=False).fetchall()) == [("a",), ("b",)]
    assert prepared.execute(sqlite, ["b", "x"], shape=False).fetchall() == [("b",)]
    assert prepared.execute(sqlite, ["a", "b"], shape=True).fetchall() == [("a",)]
    assert prepared.execute(sqlite, ["b"], shape=True).fetchall() == []
    assert builds == [False, True, True]  # arity 2 twice, then each new (shape, arity) once
    # Another dialect gets its own rendering (PostgreSQL placeholders), even for the same shape.
    sql, _ = prepared._render(PostgresqlDatabase("unused"), False, 2)
    assert sql.count("%s") == 2
    assert "?" not in sql


def test_every_bound_value_must_be_a_placeholder() -> None:
    prepared = Prepared(lambda session_id, shape: Session.select().where(
        (Session.id == session_id) & (Session.owner == "fixed")))
    with pytest.raises(TypeError, match="not a placeholder"):
        prepared.execute(SqliteDatabase(":memory:"), ["a"])


def test_insert_row_returns_the_key_or_none_when_ignored() -> None:
    sqlite = sqlite_with_sessions()
    insert = InsertRow(Session, ignore_conflicts=True)
    assert insert.columns == ("id", "owner", "created_at", "updated_at")
    row = {"id": "s1", "owner": None, "created_at": "2026-01-01", "updated_at": "2026-01-01"}
    assert insert.execute(sqlite, row) == "s1"
    assert insert.execute(sqlite, {**row, "owner": "someone else"}) is None
    assert sqlite.execute_sql("SELECT id, owner FROM sessions").fetchall() == [("s1", None)]
