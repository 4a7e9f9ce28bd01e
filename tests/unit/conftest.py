"""Fixtures shared by unit tests: a migrated SQLite database and the test Redis."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import Database

from app.config import Config
from app.storage.db import bind, close_all, db, make_database
from app.storage.migrate import migrate

REDIS_URL = os.environ.get("LYNKR_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def unconnected_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite file bound to the proxy, with no connection open (as in a stream generator)."""
    database = make_database(Config(session_db_path=str(tmp_path / "unit.db")))
    bind(database)
    migrate(database)
    yield database
    close_all()


@pytest.fixture
def sqlite_db(unconnected_db: Database) -> Iterator[Database]:
    """A migrated SQLite file bound to the proxy, connected for the test (as in a request)."""
    with db.connection_context():
        yield unconnected_db


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """A direct client on the test Redis; a missing server fails the test (never skips it)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/start-services.sh "
                    "or set LYNKR_TEST_REDIS_URL")
    yield client
    client.close()


def closed_redis_url() -> str:
    """A Redis URL on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/15"
