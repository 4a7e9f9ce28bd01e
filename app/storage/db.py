"""The database: a peewee ``DatabaseProxy`` bound once per process by the app factory.

SQLite (the default, under ``data/``) runs in WAL mode with a busy timeout and
``synchronous=NORMAL``; PostgreSQL is chosen by ``DATABASE_URL``. Both use peewee's pooled
databases: connections are opened lazily after gunicorn forks, handed back to the pool when a
request ends, and all closed on shutdown. Code running outside a request (stream generators,
background threads) wraps its work in ``with db.connection_context():``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from peewee import Database, DatabaseProxy, OperationalError
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase

from app.config import Config, ConfigError
from app.storage.extras import require

db = DatabaseProxy()
T = TypeVar("T")

SQLITE_OPEN_WAIT_S = 5.0
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 5000,
    "foreign_keys": 1,
    "cache_size": -2_000,  # KiB per connection; the pool holds up to threads + 8 of them
}


def make_database(config: Config) -> PooledDatabase:
    """Build (without connecting) the database named by the configuration."""
    if config.database_url:
        return _postgres(config.database_url, config.threads)
    path = Path(config.session_db_path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    return _SqliteDatabase(
        str(path), pragmas=SQLITE_PRAGMAS, max_connections=config.threads + 8,
        stale_timeout=300, check_same_thread=False,
    )


class _SqliteDatabase(PooledSqliteDatabase):
    """SQLite whose connections retry a locked open for a while.

    Switching a new file to WAL needs it to itself, and SQLite refuses at once — without its busy
    timeout — while another process opens it: two workers starting on a new database file.
    """

    def _connect(self) -> Any:
        return retry_while_locked(super()._connect)


def retry_while_locked(attempt: Callable[[], T]) -> T:
    """``attempt()``, retried for up to ``SQLITE_OPEN_WAIT_S`` while SQLite refuses it as locked at
    once — without its busy timeout, as it does while another connection switches a new file to
    WAL (two workers, or two apps, starting on one file)."""
    deadline = time.monotonic() + SQLITE_OPEN_WAIT_S
    while True:
        try:
            return attempt()
        except (sqlite3.OperationalError, OperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _postgres(url: str, threads: int) -> PooledDatabase:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ConfigError("DATABASE_URL must start with postgresql:// (or be unset for SQLite).")
    require("psycopg2", "postgres", "DATABASE_URL")
    return PooledPostgresqlDatabase(
        parsed.path.lstrip("/"),
        user=unquote(parsed.username or "") or None,
        password=unquote(parsed.password or "") or None,
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        max_connections=threads + 8,
        stale_timeout=300,
    )


def bind(database: Database) -> None:
    """Point the proxy at ``database`` (once per process)."""
    db.initialize(database)


def ping() -> dict[str, Any]:
    """``SELECT 1`` with its latency, for readiness checks."""
    start = time.perf_counter()
    try:
        with db.connection_context():
            db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # a readiness probe reports any failure, it never raises
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


def close_all() -> None:
    """Close every pooled connection (on worker exit)."""
    database = db.obj
    if database is not None and hasattr(database, "close_all"):
        database.close_all()
