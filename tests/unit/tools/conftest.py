"""Fixtures for tool tests: a real temporary workspace, a context over it, and a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.config import Config
from app.storage.db import db
from app.tools.base import ToolContext
from app.tools.paths import Workspace


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """An empty workspace root, beside (not containing) an ``outside`` directory."""
    root = tmp_path / "workspace"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    return root


@pytest.fixture
def make_ctx(workspace_dir: Path, tmp_path: Path) -> Any:
    """Builds a ToolContext over ``workspace_dir`` from Config overrides."""

    def build(**overrides: Any) -> ToolContext:
        values: dict[str, Any] = {"workspace_root": str(workspace_dir),
                                  "session_db_path": str(tmp_path / "lynkr.db")}
        values.update(overrides)
        config = Config(**values)
        workspace = Workspace(workspace_dir, deny=config.policy_file_blocked_paths,
                              protected=[config.session_db_path])
        return ToolContext(config=config, workspace=workspace, session_id="sess-1", api_key="key-1",
                           request_id="req-1")

    return build


@pytest.fixture
def ctx(make_ctx: Any) -> ToolContext:
    """A context with default settings."""
    return make_ctx()


@pytest.fixture
def database(app: Flask) -> Iterator[Any]:
    """The migrated SQLite database of a test app, connected for the test."""
    with db.connection_context():
        yield db
