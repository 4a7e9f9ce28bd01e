"""The migration runner: the numbered files in order, each applied once, even by two processes at once."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from peewee import IntegrityError, OperationalError, PostgresqlDatabase
from playhouse.pool import PooledSqliteDatabase

from app.agent.splice import trace_session
from app.config import Config
from app.storage.db import make_database
from app.storage.migrate import applied, available, migrate, pending
from app.storage.models import AgentTrace, ClientRequest, ToolExecution, utcnow

PG_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")
ALL = [(1, "migrations.0001_initial"), (2, "migrations.0002_keys_budgets"), (3, "migrations.0003_agent_tools"),
       (4, "migrations.0004_code_index")]
ALL_BUT_0007 = [(version, name) for version, name in available() if version < 7]


def test_available_lists_the_numbered_files_in_order() -> None:
    assert available()[:4] == ALL
    versions = [version for version, _ in available()]
    assert versions == sorted(set(versions))


def test_a_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))
    names: list[str] = []
    with database.connection_context():
        assert pending(database) == available()
        assert applied(database) == set()
    every = [version for version, _ in available()]
    assert migrate(database, on_applied=names.append) == every
    assert names == [name for _, name in available()]
    assert migrate(database, on_applied=names.append) == []
    assert len(names) == len(every)
    with database.connection_context():
        assert applied(database) == set(every)
        assert pending(database) == []
        assert {"sessions", "turns", "client_requests", "api_keys", "usage_counters", "tool_executions",
                "index_roots", "schema_migrations"} <= set(database.get_tables())
    database.close_all()


def test_a_migration_lock_refused_at_once_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite refuses BEGIN IMMEDIATE without its busy timeout while another connection switches a
    # new file to WAL; the migration waits for it instead of failing the app's start.
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))
    real_atomic = database.atomic
    refusals = [OperationalError("database is locked")] * 2

    def atomic(*args: Any, **kwargs: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return real_atomic(*args, **kwargs)

    monkeypatch.setattr(database, "atomic", atomic)
    assert migrate(database) == [version for version, _ in available()]
    assert refusals == []
    database.close_all()


def test_another_operational_error_of_the_migration_lock_is_raised(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))

    def atomic(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(database, "atomic", atomic)
    with pytest.raises(OperationalError, match="disk I/O error"):
        migrate(database)
    database.close_all()


def test_only_the_missing_versions_are_applied(tmp_path: Path) -> None:
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))
    migrate(database)
    with database.connection_context():
        database.execute_sql("DELETE FROM schema_migrations WHERE version = 4")
        database.execute_sql("DROP TABLE index_roots")
    assert migrate(database) == [4]
    with database.connection_context():
        assert "index_roots" in database.get_tables()
    database.close_all()


def test_two_processes_starting_together_apply_each_migration_once(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        database = make_database(Config(session_db_path=path))
        barrier.wait()
        results.append(migrate(database))
        database.close_all()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results[0] + results[1]) == [version for version, _ in available()]


@pytest.mark.postgres
def test_postgres_ends_with_nothing_pending() -> None:
    database = make_database(Config(database_url=PG_URL))
    migrate(database)
    with database.connection_context():
        assert pending(database) == []
        assert {version for version, _ in available()} <= applied(database)
    database.close_all()

@pytest.mark.postgres
def test_instances_starting_together_on_a_fresh_postgres_database_each_see_it_migrated() -> None:
    # Two `lynkr serve` starting together on a new database both ask what is pending first:
    # creating schema_migrations concurrently must not fail one of them (a pg_type unique violation).
    schema = f"migrate_race_{uuid.uuid4().hex[:12]}"
    admin = PostgresqlDatabase(None)
    admin.init(**_pg_params(PG_URL))
    admin.execute_sql(f"CREATE SCHEMA {schema}")
    try:
        barrier = threading.Barrier(8)
        outcomes: list[object] = []

        def start() -> None:
            database = PostgresqlDatabase(None)
            database.init(**_pg_params(PG_URL), options=f"-c search_path={schema}")
            with database.connection_context():
                barrier.wait()
                try:
                    outcomes.append(len(pending(database)))
                except Exception as exc:  # what a failed start would see
                    outcomes.append(exc)

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == [len(available())] * 8
    finally:
        admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def _pg_params(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    return {"database": parsed.path.lstrip("/"), "user": parsed.username, "password": parsed.password,
            "host": parsed.hostname, "port": parsed.port or 5432}


def test_0006_moves_a_sessions_traces_to_its_one_key_and_drops_those_of_shared_sessions(tmp_path: Path) -> None:
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))
    migrate(database)
    with database.connection_context(), database.bind_ctx([ClientRequest, AgentTrace]):
        database.execute_sql("DELETE FROM schema_migrations WHERE version = 6")
        for number, (session, key) in enumerate([("one-key", "key-a"), ("one-key", "key-a"), ("two-keys", "key-a"),
                                                 ("two-keys", "key-b"), ("no-key", None)]):
            ClientRequest.create(request_id=f"r{number}", session_id=session, api_key=key, path="/v1/messages",
                                 status=200, created_at=utcnow())
        for session in ("one-key", "two-keys", "no-key", "unrecorded"):
            AgentTrace.create(session_id=session, anchor="a" * 64, messages="[]", created_at=utcnow())
    assert migrate(database) == [6]
    with database.connection_context(), database.bind_ctx([AgentTrace]):
        assert sorted(t.session_id for t in AgentTrace.select()) == sorted(
            [trace_session("one-key", "key-a"), trace_session("no-key", None)])
    database.close_all()


def test_0007_gives_each_tool_run_the_key_of_its_request_and_keeps_one_run_per_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = PooledSqliteDatabase(str(tmp_path / "m.db"))
    monkeypatch.setattr("app.storage.migrate.available", lambda: ALL_BUT_0007)
    migrate(database)
    monkeypatch.undo()
    insert_run = ("INSERT INTO tool_executions (session_id, tool_use_id, request_id, name, input, result, is_error, "
                  "created_at) VALUES (?, ?, ?, 'Read', '{}', '\"x\"', 0, '2026-12-07 10:00:00')")
    with database.connection_context(), database.bind_ctx([ClientRequest]):
        for request_id, key in (("r-a", "key_a"), ("r-b", "key_b"), ("r-none", None)):
            ClientRequest.create(request_id=request_id, session_id="s1", api_key=key, path="/v1/messages",
                                 status=200, created_at=utcnow())
        for tool_use_id, request_id in (("toolu_1", "r-a"), ("toolu_2", "r-b"), ("toolu_3", "r-none"),
                                        ("toolu_4", None), ("toolu_5", "r-unrecorded")):
            database.execute_sql(insert_run, ("s1", tool_use_id, request_id))
        # A deployment whose old unique index has a name of its own loses it all the same.
        database.execute_sql("DROP INDEX toolexecution_session_id_tool_use_id")
        database.execute_sql("CREATE UNIQUE INDEX legacy_runs ON tool_executions (session_id, tool_use_id)")
    assert migrate(database) == [7]
    with database.connection_context(), database.bind_ctx([ToolExecution]):
        assert sorted((run.tool_use_id, run.owner) for run in ToolExecution.select()) == [
            ("toolu_1", "key_a"), ("toolu_2", "key_b"), ("toolu_3", ""), ("toolu_4", ""), ("toolu_5", "")]
        assert [(index.columns, index.unique) for index in database.get_indexes("tool_executions")] == [
            (["session_id", "owner", "tool_use_id"], True)]
        # The same call id under another key is a run of its own; under the same key it is refused.
        ToolExecution.create(session_id="s1", owner="key_b", tool_use_id="toolu_1", name="Read", input="{}",
                             result='"y"')
        with pytest.raises(IntegrityError):
            ToolExecution.create(session_id="s1", owner="key_a", tool_use_id="toolu_1", name="Read", input="{}",
                                 result='"y"')
    database.close_all()
