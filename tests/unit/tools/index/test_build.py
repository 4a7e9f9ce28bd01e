"""The incremental rebuild: what is indexed, what is skipped, what is parsed again, and the lease."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.tools.index import build
from app.tools.index.build import IndexBusy, language_mix, last_rebuild, rebuild
from app.tools.index.models import IndexedFile, IndexedImport, IndexedReference, IndexedSymbol, IndexRoot
from app.tools.paths import Workspace

CAP = 4096


def write(root: Path, path: str, text: str | bytes) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    return target


def indexed(root: Path) -> dict[str, tuple[str, int, str | None]]:
    query = IndexedFile.select().where(IndexedFile.root == str(root)).order_by(IndexedFile.path)
    return {row.path: (row.language, row.lines, row.error) for row in query}


def symbols(root: Path) -> list[tuple[str, str, str]]:
    query = (IndexedSymbol.select(IndexedSymbol, IndexedFile).join(IndexedFile)
             .where(IndexedFile.root == str(root)).order_by(IndexedFile.path, IndexedSymbol.line))
    return [(row.file.path, row.name, row.kind) for row in query]


@pytest.fixture
def repo(workspace_dir: Path) -> Path:
    write(workspace_dir, "app/models.py", "class User:\n    def save(self):\n        pass\n")
    write(workspace_dir, "web/api.ts", "import { x } from './x';\nexport function handler() { return x; }\n")
    write(workspace_dir, "lib/cart.rb", "class Cart\n  def total\n  end\nend\n")
    write(workspace_dir, "README.md", "# not source\n")
    write(workspace_dir, ".gitignore", "build/\n*.gen.py\n")
    write(workspace_dir, "build/out.py", "def built(): pass\n")
    write(workspace_dir, "app/schema.gen.py", "def generated(): pass\n")
    write(workspace_dir, "node_modules/dep/index.js", "function dep() {}\n")
    write(workspace_dir, "private/secret.py", "TOKEN = 1\n")
    write(workspace_dir, "big.py", "x = 1\n" * 1000)
    write(workspace_dir, "blob.py", b"\x00\x01\x02binary")
    write(workspace_dir, "latin1.py", b"name = '\xe9'\n")
    return workspace_dir


def test_a_cold_rebuild_indexes_source_and_skips_ignored_denied_large_and_binary_files(
        database: Any, repo: Path) -> None:
    workspace = Workspace(repo, deny=["private"])
    stats = rebuild(workspace, CAP)
    assert (stats.files, stats.parsed, stats.unchanged, stats.removed, stats.skipped) == (4, 4, 0, 0, 2)
    assert stats.failed == [("latin1.py", "not UTF-8 text (byte 8)")]
    assert stats.symbols == 5
    assert indexed(repo) == {"app/models.py": ("python", 3, None),
                             "latin1.py": ("python", 0, "not UTF-8 text (byte 8)"),
                             "lib/cart.rb": ("ruby", 4, None), "web/api.ts": ("typescript", 2, None)}
    assert symbols(repo) == [("app/models.py", "User", "class"), ("app/models.py", "save", "method"),
                             ("lib/cart.rb", "Cart", "class"), ("lib/cart.rb", "total", "method"),
                             ("web/api.ts", "handler", "function")]
    assert [row.module for row in IndexedImport.select()] == ["./x"]
    assert language_mix(repo) == [("python", 2, 3), ("ruby", 1, 4), ("typescript", 1, 2)]
    assert last_rebuild(repo) is not None
    assert stats.line().startswith("Indexed 4 files (4 parsed, 0 unchanged, 0 removed, 2 skipped, 1 failed): "
                                   "5 symbols in ")


def test_unchanged_files_are_not_parsed_again_and_a_touched_file_is_only_hashed(database: Any, repo: Path) -> None:
    workspace = Workspace(repo, deny=["private"])
    rebuild(workspace, CAP)
    warm = rebuild(workspace, CAP)
    assert (warm.parsed, warm.unchanged, warm.removed, warm.failed) == (0, 4, 0, [])
    touched = repo / "app/models.py"
    os.utime(touched, (time.time() + 5, time.time() + 5))
    again = rebuild(workspace, CAP)
    assert (again.parsed, again.unchanged) == (0, 4)
    assert IndexedFile.get(IndexedFile.path == "app/models.py").mtime == touched.stat().st_mtime
    write(repo, "app/models.py", "class Account:\n    pass\n")
    changed = rebuild(workspace, CAP)
    assert (changed.parsed, changed.unchanged, changed.symbols) == (1, 3, 4)
    assert [row for row in symbols(repo) if row[0] == "app/models.py"] == [("app/models.py", "Account", "class")]


def test_a_deleted_file_leaves_every_table(database: Any, repo: Path) -> None:
    workspace = Workspace(repo, deny=["private"])
    rebuild(workspace, CAP)
    file_id = IndexedFile.get(IndexedFile.path == "web/api.ts").id
    (repo / "web/api.ts").unlink()
    stats = rebuild(workspace, CAP)
    assert (stats.removed, stats.files, stats.symbols) == (1, 3, 4)
    for model in (IndexedSymbol, IndexedReference, IndexedImport):
        assert model.select().where(model.file == file_id).count() == 0
    assert "web/api.ts" not in indexed(repo)


def test_a_symlink_out_of_the_workspace_is_not_followed(database: Any, workspace_dir: Path) -> None:
    outside = workspace_dir.parent / "outside" / "leak.py"
    outside.write_text("def leaked(): pass\n")
    (workspace_dir / "link.py").symlink_to(outside)
    write(workspace_dir, "own.py", "def own(): pass\n")
    rebuild(Workspace(workspace_dir), CAP)
    assert list(indexed(workspace_dir)) == ["own.py"]


def test_concurrent_rebuilds_of_one_root_run_one_at_a_time_and_agree(database: Any, repo: Path) -> None:
    workspace = Workspace(repo, deny=["private"])
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(rebuild(workspace, CAP))
        except BaseException as exc:  # collected so the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(stats.parsed for stats in results) == [0, 0, 4]
    assert all(stats.files == 4 and stats.symbols == 5 for stats in results)
    assert IndexedFile.select().count() == 4
    assert IndexRoot.get_by_id(str(repo)).lease_owner is None


def test_a_rebuild_waits_while_another_holds_the_lease(database: Any, repo: Path) -> None:
    workspace = Workspace(repo, deny=["private"])
    finished = threading.Event()

    def run() -> None:
        rebuild(workspace, CAP)
        finished.set()

    with build._lease(str(repo)):
        waiter = threading.Thread(target=run)
        waiter.start()
        assert not finished.wait(0.5)
    waiter.join(10)
    assert finished.is_set()
    assert IndexedFile.select().count() == 4


def test_a_lease_left_by_a_dead_rebuild_expires(database: Any, repo: Path) -> None:
    IndexRoot.create(root=str(repo), lease_owner="dead", lease_until=time.time() - 1)
    stats = rebuild(Workspace(repo, deny=["private"]), CAP)
    assert stats.parsed == 4


def test_waiting_too_long_for_the_lease_is_an_error(database: Any, repo: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "WAIT_MAX_S", 0.3)
    IndexRoot.create(root=str(repo), lease_owner="busy", lease_until=time.time() + 60)
    with pytest.raises(IndexBusy, match="another index rebuild of this workspace has run for over 0 s"):
        rebuild(Workspace(repo), CAP)


def test_progress_is_reported_for_every_file_looked_at(database: Any, repo: Path) -> None:
    seen: list[tuple[int, int]] = []
    rebuild(Workspace(repo, deny=["private"]), CAP, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
