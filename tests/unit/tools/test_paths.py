"""Workspace.resolve: what a tool may touch, on real directories and symlinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.tools.paths import PathRefused, Workspace


@pytest.fixture
def ws(workspace_dir: Path) -> Workspace:
    """A workspace over the empty test root, with default deny rules."""
    return Workspace(workspace_dir)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """The directory beside the root, holding a file a tool must never reach."""
    (tmp_path / "outside" / "secret.txt").write_text("outside secret")
    return tmp_path / "outside"


def test_relative_path_resolves_to_the_real_file(ws: Workspace, workspace_dir: Path) -> None:
    (workspace_dir / "src").mkdir()
    (workspace_dir / "src" / "a.py").write_text("x")
    assert ws.resolve("src/a.py") == workspace_dir / "src" / "a.py"
    assert ws.resolve("./src/../src/a.py") == workspace_dir / "src" / "a.py"


def test_a_missing_file_inside_resolves(ws: Workspace, workspace_dir: Path) -> None:
    assert ws.resolve("new/dir/file.txt") == workspace_dir / "new" / "dir" / "file.txt"


def test_absolute_path_inside_the_root_is_allowed(ws: Workspace, workspace_dir: Path) -> None:
    assert ws.resolve(str(workspace_dir / "a.txt")) == workspace_dir / "a.txt"


def test_root_itself(ws: Workspace, workspace_dir: Path) -> None:
    assert ws.resolve(".") == workspace_dir
    assert ws.resolve(str(workspace_dir)) == workspace_dir
    with pytest.raises(PathRefused, match=r"the workspace root itself cannot be used here"):
        ws.resolve(".", allow_root=False)


@pytest.mark.parametrize("path", ["..", "../outside/secret.txt", "src/../../outside/secret.txt",
                                  "../workspace-other/x"])
def test_dot_dot_out_of_the_root_is_refused(ws: Workspace, outside: Path, path: str) -> None:
    with pytest.raises(PathRefused) as refused:
        ws.resolve(path)
    assert str(refused.value) == f"'{path}' is outside the workspace"


def test_absolute_path_outside_is_refused(ws: Workspace, outside: Path) -> None:
    with pytest.raises(PathRefused, match=r"is outside the workspace"):
        ws.resolve(str(outside / "secret.txt"))
    with pytest.raises(PathRefused, match=r"is outside the workspace"):
        ws.resolve("/etc/passwd")


def test_symlink_to_an_outside_file_is_refused_without_naming_the_target(
        ws: Workspace, workspace_dir: Path, outside: Path) -> None:
    (workspace_dir / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(PathRefused) as refused:
        ws.resolve("link.txt")
    assert str(refused.value) == "'link.txt' is outside the workspace"


def test_symlink_to_an_outside_directory_is_refused(ws: Workspace, workspace_dir: Path, outside: Path) -> None:
    (workspace_dir / "out").symlink_to(outside, target_is_directory=True)
    for path in ("out", "out/secret.txt", "out/new.txt"):
        with pytest.raises(PathRefused, match=r"is outside the workspace"):
            ws.resolve(path)


def test_dangling_symlink_pointing_outside_is_refused(ws: Workspace, workspace_dir: Path, outside: Path) -> None:
    (workspace_dir / "later.txt").symlink_to(outside / "not-yet.txt")
    with pytest.raises(PathRefused, match=r"is outside the workspace"):
        ws.resolve("later.txt")


def test_symlink_inside_to_inside_resolves_to_its_target(ws: Workspace, workspace_dir: Path) -> None:
    (workspace_dir / "real").mkdir()
    (workspace_dir / "real" / "a.txt").write_text("a")
    (workspace_dir / "alias").symlink_to(workspace_dir / "real", target_is_directory=True)
    (workspace_dir / "a-link.txt").symlink_to("real/a.txt")
    assert ws.resolve("alias/a.txt") == workspace_dir / "real" / "a.txt"
    assert ws.resolve("a-link.txt") == workspace_dir / "real" / "a.txt"


def test_nul_byte_is_refused(ws: Workspace) -> None:
    with pytest.raises(PathRefused, match=r"NUL bytes"):
        ws.resolve("a.txt\0.png")


@pytest.mark.parametrize("path", ["", "   "])
def test_empty_path_is_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(PathRefused, match=r"a path is required"):
        ws.resolve(path)


@pytest.mark.parametrize("path", [".env", ".env.local", "config/.env", "id_rsa", "keys/id_ed25519.pub", "x.pem",
                                  "certs/server.key", "prod.env", "data/app.sqlite3", ".git-credentials",
                                  ".env/inside.txt"])
def test_deny_list_applies_inside_the_root(ws: Workspace, workspace_dir: Path, path: str) -> None:
    with pytest.raises(PathRefused) as refused:
        ws.resolve(path)
    assert str(refused.value) == f"'{path}' matches the deny list and cannot be used by tools"


def test_symlink_with_an_innocent_name_to_a_denied_file_is_refused(ws: Workspace, workspace_dir: Path) -> None:
    (workspace_dir / ".env").write_text("TOKEN=1")
    (workspace_dir / "notes.txt").symlink_to(".env")
    with pytest.raises(PathRefused, match=r"matches the deny list"):
        ws.resolve("notes.txt")


@pytest.mark.parametrize("path", ["environment.txt", "src/env.py", "keyboard.py", "docs/pem.md"])
def test_names_near_the_deny_list_are_allowed(ws: Workspace, workspace_dir: Path, path: str) -> None:
    assert ws.resolve(path) == workspace_dir / path


def test_protected_paths_are_refused(workspace_dir: Path) -> None:
    ws = Workspace(workspace_dir, protected=[workspace_dir / "state" / "sessions", workspace_dir / "metrics"])
    for path in ("state/sessions", "metrics", "metrics/worker-1"):
        with pytest.raises(PathRefused) as refused:
            ws.resolve(path)
        assert str(refused.value) == f"'{path}' is protected by the gateway"
    assert ws.resolve("state/other") == workspace_dir / "state" / "other"


def test_empty_protected_entries_are_ignored(workspace_dir: Path) -> None:
    assert Workspace(workspace_dir, protected=[""]).resolve("a.txt") == workspace_dir / "a.txt"


def test_policy_blocked_paths_are_refused(make_ctx: Any, workspace_dir: Path) -> None:
    ws = make_ctx(policy_file_blocked_paths=("*.secret", "config/prod.yaml", "private/", "/vault/*")).workspace
    for path in ("a.secret", "deep/b.secret", "config/prod.yaml", "private/notes.md", "vault/x/y"):
        with pytest.raises(PathRefused, match=r"matches the deny list"):
            ws.resolve(path)
    for path in ("config/dev.yaml", "other/config/prod.yaml", "vault"):
        assert ws.resolve(path) == workspace_dir / path


def test_session_database_given_by_the_config_is_protected(make_ctx: Any, workspace_dir: Path) -> None:
    ws = make_ctx(session_db_path=str(workspace_dir / "state" / "sessions")).workspace
    with pytest.raises(PathRefused, match=r"is protected by the gateway"):
        ws.resolve("state/sessions")


def test_allowed_and_relative(ws: Workspace, workspace_dir: Path) -> None:
    assert ws.allowed(workspace_dir / "src" / "a.py")
    assert not ws.allowed(workspace_dir / "src" / ".env")
    assert ws.relative(workspace_dir / "src" / "a.py") == "src/a.py"
    assert ws.relative(workspace_dir) == "."
