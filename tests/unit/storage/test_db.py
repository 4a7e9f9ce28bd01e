"""The database: SQLite with its pragmas or PostgreSQL from DATABASE_URL, the readiness ping, closing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from app.config import Config, ConfigError
from app.storage.db import bind, close_all, db, make_database, ping

PG_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")


def test_sqlite_is_created_under_missing_folders_with_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "lynkr.db"
    database = make_database(Config(session_db_path=str(path), threads=4))
    assert isinstance(database, PooledSqliteDatabase)
    assert database._max_connections == 12
    assert path.parent.is_dir()
    assert not path.exists()  # built, not connected
    with database.connection_context():
        pragmas = {name: database.execute_sql(f"PRAGMA {name}").fetchone()[0]
                   for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1, "synchronous": 1}
    assert path.is_file()
    database.close_all()


def test_a_postgres_url_is_split_into_connection_parameters() -> None:
    database = make_database(Config(database_url="postgresql://us%40er:p%3Ass@db.example:6543/lynkr", threads=2))
    assert isinstance(database, PooledPostgresqlDatabase)
    assert database.database == "lynkr"
    assert database.connect_params == {"user": "us@er", "password": "p:ss", "host": "db.example", "port": 6543}
    assert database._max_connections == 10


def test_a_bare_postgres_url_takes_the_defaults() -> None:
    database = make_database(Config(database_url="postgres:///lynkr"))
    assert database.connect_params == {"user": None, "password": None, "host": "127.0.0.1", "port": 5432}


def test_another_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL must start with postgresql://"):
        make_database(Config(database_url="mysql://db/lynkr"))


def test_ping_reports_latency_and_close_all_closes_the_pool(tmp_path: Path) -> None:
    database = make_database(Config(session_db_path=str(tmp_path / "p.db")))
    bind(database)
    result = ping()
    assert result["ok"] is True
    assert set(result) == {"ok", "latency_ms"}
    assert result["latency_ms"] >= 0
    with db.connection_context():
        assert len(database._in_use) == 1
    assert len(database._connections) == 1
    close_all()
    assert len(database._connections) == 0


def test_ping_reports_a_failure_instead_of_raising(tmp_path: Path) -> None:
    bind(PooledSqliteDatabase(str(tmp_path / "missing" / "x.db")))
    assert ping() == {"ok": False, "error": "OperationalError: unable to open database file"}


@pytest.mark.postgres
def test_ping_on_postgres() -> None:
    database = make_database(Config(database_url=PG_URL))
    bind(database)
    try:
        assert ping()["ok"] is True
    finally:
        close_all()
