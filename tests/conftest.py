"""Shared fixtures: ``make_config``, ``app``, ``client`` (Flask test client) and ``log_records``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Config
from app.resilience.drain import DrainFlag
from app.resilience.retry import InProcessStore

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "claude-code"
DATABRICKS_BASE = "https://example.cloud.databricks.com"
DATABRICKS_URL = DATABRICKS_BASE + "/serving-endpoints/anthropic/v1/messages"
DATABRICKS_TOKEN = "dapi0123456789abcdef0123456789abcdef"
AZURE_URL = "https://example.services.ai.azure.com/anthropic/v1/messages"
AZURE_KEY = "azure-key-0123456789abcdef"


@pytest.fixture
def make_config(tmp_path: Path) -> Any:
    """Builds a Config with a fresh SQLite file and a configured Databricks provider."""

    def build(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "session_db_path": str(tmp_path / "lynkr.db"),
            "databricks_api_base": DATABRICKS_BASE,
            "databricks_api_key": DATABRICKS_TOKEN,
            "azure_anthropic_endpoint": AZURE_URL,
            "azure_anthropic_api_key": AZURE_KEY,
            "keepalive_commit_ms": 2000,
            "retry_max_retries": 0,
        }
        values.update(overrides)
        return Config(**values)

    return build


@pytest.fixture
def log_records() -> Iterator[Callable[[str], list[logging.LogRecord]]]:
    """``capture(name)``: the records of logger ``name`` (which may not propagate to the root) from now on.

    Each call attaches a handler of its own; all are removed after the test.
    """
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def capture(name: str) -> list[logging.LogRecord]:
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return records

    yield capture
    for logger, handler in attached:
        logger.removeHandler(handler)


@pytest.fixture
def drain() -> DrainFlag:
    """A drain flag of the test's own, never the process-wide one."""
    return DrainFlag()


@pytest.fixture
def make_app(make_config: Any, drain: DrainFlag) -> Iterator[Callable[..., Flask]]:
    """Builds an app from config overrides, with the test's own drain flag and breaker store.

    Each app's queued usage rows and transcripts are written before the test ends: the writer
    resolves the process-wide database when it runs, so a write left queued would land in (and
    lock) the next test's database while that test binds its own.
    """
    built: list[Flask] = []

    def flushed(app: Flask) -> None:
        assert app.extensions["lynkr"].recorder.flush(), "the app's background writes did not finish"

    def build(**overrides: Any) -> Flask:
        for earlier in built:  # while the process-wide database is still the one they were queued for
            flushed(earlier)
        app = create_app(make_config(**overrides), drain=drain, breaker_store=InProcessStore())
        built.append(app)
        return app

    yield build
    for app in built:
        flushed(app)


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    """The app with default test configuration."""
    application = make_app()
    yield application
    application.extensions["lynkr"].recorder.flush()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A Flask test client."""
    return app.test_client()


def load_fixture(name: str) -> dict[str, Any]:
    """A recorded Claude Code request (``{"method","path","query","headers","body"}``)."""
    import json

    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"recorded fixture {path} is missing: the shared/ folder must sit beside the repository")
    return json.loads(path.read_text())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` or ``redis`` are also ``services``: ``-m "not services"`` runs without either."""
    for item in items:
        if item.get_closest_marker("postgres") or item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.services)
