"""Runs the numbered files in ``migrations/`` that a database has not seen yet.

Applied versions are kept in ``schema_migrations``. Each migration runs in its own
transaction, under a lock (an immediate transaction on SQLite, an advisory lock on
PostgreSQL), so two processes starting together apply each migration once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources

from peewee import Database, PostgresqlDatabase

from app.logging import get_logger
from app.storage.db import retry_while_locked

log = get_logger("migrate")
_NAME = re.compile(r"^(\d{4})_\w+\.py$")
_LOCK_KEY = 0x4C594E4B  # "LYNK", PostgreSQL advisory lock id


def available() -> list[tuple[int, str]]:
    """``(version, module name)`` for every migration file, in order."""
    found = []
    for entry in resources.files("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), "migrations." + entry.name[:-3]))
    return sorted(found)


def applied(database: Database) -> set[int]:
    """Versions already applied to ``database``."""
    # Under the lock: PostgreSQL fails one of two concurrent CREATE TABLE IF NOT EXISTS (instances
    # starting together on a new database) with a unique violation in its catalog.
    with _locked_transaction(database):
        database.execute_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
    return {row[0] for row in database.execute_sql("SELECT version FROM schema_migrations")}


def pending(database: Database) -> list[tuple[int, str]]:
    """Migrations not yet applied."""
    done = applied(database)
    return [(v, name) for v, name in available() if v not in done]


def migrate(database: Database, on_applied: Callable[[str], None] | None = None) -> list[int]:
    """Apply every pending migration; returns the versions applied now.

    ``on_applied`` is called with each migration's name once it is applied (a progress display).
    """
    done: list[int] = []
    with database.connection_context():
        if not pending(database):
            return done
        for version, name in available():
            with _locked_transaction(database):
                if version in applied(database):
                    continue
                importlib.import_module(name).up(database)
                insert = f"INSERT INTO schema_migrations (version) VALUES ({database.param})"  # noqa: S608
                database.execute_sql(insert, (version,))
                log.info("applied migration %s", name)
                done.append(version)
                if on_applied is not None:
                    on_applied(name)
    return done


@contextmanager
def _locked_transaction(database: Database) -> Iterator[None]:
    """A transaction that holds the migration lock until it ends."""
    if isinstance(database, PostgresqlDatabase):
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            yield
    else:
        with ExitStack() as stack:
            retry_while_locked(lambda: stack.enter_context(database.atomic(lock_type="IMMEDIATE")))
            yield
