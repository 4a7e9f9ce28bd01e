"""Fixtures for the git tools: a real repository in the workspace (made with dulwich) and a bare remote."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.repo import Repo

AUTHOR = b"Ada <ada@example.com>"


def commit_files(root: Path, files: dict[str, str], message: str) -> bytes:
    """Write ``files`` under ``root``, stage them and commit as :data:`AUTHOR`."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    with Repo(str(root)) as repo:
        porcelain.add(repo, [str(root / path) for path in files])
        return porcelain.commit(repo, message=message.encode(), author=AUTHOR, committer=AUTHOR, no_verify=True,
                                env={})


@pytest.fixture
def git_repo(workspace_dir: Path) -> Path:
    """The workspace as a repository on ``main`` with one commit of ``app.py`` and ``README.md``."""
    with Repo.init(str(workspace_dir)) as repo:
        repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        config = repo.get_config()
        config.set((b"user",), b"name", b"Repo User")
        config.set((b"user",), b"email", b"repo@example.com")
        config.write_to_path()
    commit_files(workspace_dir, {"app.py": "print('v1')\n", "README.md": "# App\n"}, "Initial commit")
    return workspace_dir


@pytest.fixture
def bare_remote(tmp_path: Path, git_repo: Path) -> Path:
    """A bare repository configured as the workspace's ``origin``."""
    remote = tmp_path / "remote.git"
    Repo.init_bare(str(remote), mkdir=True).close()
    with Repo(str(git_repo)) as repo:
        config = repo.get_config()
        config.set((b"remote", b"origin"), b"url", str(remote).encode())
        config.write_to_path()
    return remote
