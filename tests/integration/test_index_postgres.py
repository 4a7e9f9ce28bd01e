"""The code index and its rebuild lease on a real PostgreSQL, as two instances sharing it would use them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.storage.db import db
from app.tools.index.build import rebuild
from app.tools.index.lookup import Usage, find_usages, search_symbols
from app.tools.index.models import INDEX_TABLES, IndexedFile
from app.tools.paths import Workspace
from tests.integration.test_postgres import pg_app  # noqa: F401 (the fixture)

pytestmark = pytest.mark.postgres


def test_concurrent_rebuilds_searches_and_usages_on_postgres(pg_app: Any, tmp_path: Path) -> None:  # noqa: F811
    with db.connection_context():
        for model in reversed(INDEX_TABLES):
            model.delete().execute()
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src/user_store.ts").write_text("export class UserStore {\n  find(id: string) { return id; }\n}\n")
    (root / "src/app.ts").write_text("import { UserStore } from './user_store';\nnew UserStore().find('1');\n")
    (root / "jobs.py").write_text("def user_sync():\n    pass\n")
    workspace = Workspace(root)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(rebuild(workspace, 1024**2))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(stats.parsed for stats in results) == [0, 3]
    assert [hit.describe() for hit in search_symbols(root, "usr", match="fuzzy")] == [
        "jobs.py:1:5 function user_sync", "src/user_store.ts:1:14 class UserStore"]
    assert [hit.describe() for hit in search_symbols(root, "userst", match="prefix")] == [
        "src/user_store.ts:1:14 class UserStore"]
    assert find_usages(root, "UserStore") == ([Usage("src/app.ts", 1, 10), Usage("src/app.ts", 2, 5)], 2)
    (root / "jobs.py").unlink()
    assert rebuild(workspace, 1024**2).removed == 1
    with db.connection_context():
        assert sorted(row.path for row in IndexedFile.select()) == ["src/app.ts", "src/user_store.ts"]
