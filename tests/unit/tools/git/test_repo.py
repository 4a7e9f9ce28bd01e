"""Local git operations on a real repository: status, diff, stage, unstage, commit, branches, log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dulwich.repo import Repo

from app.tools.git.repo import (
    GitError,
    Status,
    branches,
    checkout,
    commit,
    current_branch,
    describe_status,
    diff,
    identity,
    last_change,
    log,
    open_repo,
    relative_paths,
    resolve,
    stage,
    status,
    unstage,
)
from app.tools.paths import PathRefused, Workspace
from tests.unit.tools.git.conftest import commit_files


def test_a_workspace_that_is_not_a_repository_is_refused(workspace_dir: Path) -> None:
    with pytest.raises(GitError, match="the workspace root is not a git repository"), \
            open_repo(Workspace(workspace_dir)):
        pass


def test_status_lists_each_kind_of_change_and_hides_denied_files(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    (git_repo / "app.py").write_text("print('v2')\n")
    (git_repo / "new.py").write_text("x = 1\n")
    (git_repo / ".env").write_text("SECRET=1\n")
    (git_repo / "README.md").unlink()
    with open_repo(workspace) as repo:
        assert stage(workspace, repo, ["README.md"]) == (["README.md"], [])
        state = status(workspace, repo)
    assert state == Status("main", deleted=["README.md"], unstaged=["app.py"], untracked=["new.py"])
    assert describe_status(state) == ("On branch main\nStaged (will be committed):\n  deleted: README.md\n"
                                      "Not staged:\n  app.py\nUntracked:\n  new.py")
    assert describe_status(Status("main")) == "On branch main\nNothing to commit, working tree clean."


def test_paths_are_checked_by_the_workspace_and_git_internals_are_refused(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    assert relative_paths(workspace, ["app.py", str(git_repo / "README.md")]) == ["app.py", "README.md"]
    with pytest.raises(PathRefused, match="outside the workspace"):
        relative_paths(workspace, ["../elsewhere.py"])
    with pytest.raises(PathRefused, match="deny list"):
        relative_paths(workspace, [".env"])
    with pytest.raises(GitError, match=r"inside \.git"):
        relative_paths(workspace, [".git/HEAD"])


def test_diffs_of_the_working_tree_the_index_and_two_revisions(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    with open_repo(workspace) as repo:
        initial = resolve(repo, "HEAD").decode()
    second = commit_files(git_repo, {"app.py": "print('v2')\n"}, "Second").decode()
    (git_repo / "app.py").write_text("print('v3')\n")
    with open_repo(workspace) as repo:
        assert diff(workspace, repo).splitlines()[-2:] == ["-print('v2')", "+print('v3')"]
        assert diff(workspace, repo, staged=True) == ""
        stage(workspace, repo, ["app.py"])
        assert diff(workspace, repo, staged=True).splitlines()[-2:] == ["-print('v2')", "+print('v3')"]
        between = diff(workspace, repo, base=initial[:7], target=second, paths=["app.py"])
        assert between.splitlines()[0] == "diff --git a/app.py b/app.py"
        assert between.splitlines()[-2:] == ["-print('v1')", "+print('v2')"]
        assert diff(workspace, repo, base=second, target="main") == ""
        assert diff(workspace, repo, base="HEAD~1", target="main", paths=["app.py"]) == between
        assert diff(workspace, repo, base="HEAD^", target="HEAD~0", paths=["app.py"]) == between
        assert resolve(repo, "main~1").decode() == initial
        with pytest.raises(GitError, match="unknown revision 'nope'"):
            diff(workspace, repo, base="nope", target="HEAD")
        with pytest.raises(GitError, match=r"unknown revision 'HEAD~5': the history is not that deep"):
            resolve(repo, "HEAD~5")


def test_denied_files_never_appear_in_a_diff(git_repo: Path) -> None:
    commit_files(git_repo, {"config.yml": "a: 1\n"}, "Config")
    (git_repo / "config.yml").write_text("a: 2\n")
    (git_repo / "app.py").write_text("print('v2')\n")
    workspace = Workspace(git_repo, deny=["config.yml"])
    with open_repo(workspace) as repo:
        text = diff(workspace, repo)
    assert "config.yml" not in text
    assert "+print('v2')" in text


def test_unstage_puts_heads_entry_back_and_keeps_the_file(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    (git_repo / "app.py").write_text("print('v2')\n")
    (git_repo / "new.py").write_text("x = 1\n")
    with open_repo(workspace) as repo:
        stage(workspace, repo, ["app.py", "new.py"])
        assert status(workspace, repo).staged == ["app.py", "new.py"]
        assert unstage(repo, ["app.py", "new.py", "README.md"]) == ["app.py", "new.py"]
        assert status(workspace, repo) == Status("main", unstaged=["app.py"], untracked=["new.py"])
    assert (git_repo / "app.py").read_text() == "print('v2')\n"


def test_commit_with_the_settings_author_or_the_repository_config(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    (git_repo / "app.py").write_text("print('v2')\n")
    with open_repo(workspace) as repo:
        assert identity(repo, "Bot", "bot@example.com") == b"Bot <bot@example.com>"
        assert identity(repo, "", "") == b"Repo User <repo@example.com>"
        stage(workspace, repo, ["app.py"])
        sha = commit(repo, "Change app", identity(repo, "", ""))
        assert resolve(repo, "HEAD") == sha
        head = repo[sha]
        assert (head.author, head.message) == (b"Repo User <repo@example.com>", b"Change app")
        amended = commit(repo, "Change app, better", identity(repo, "", ""), amend=True)
        assert [entry.subject for entry in log(repo, limit=5)] == ["Change app, better", "Initial commit"]
        assert amended != sha


def test_without_any_author_the_commit_is_refused(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(git_repo.parent))  # no global ~/.gitconfig
    monkeypatch.setenv("XDG_CONFIG_HOME", str(git_repo.parent))
    with Repo(str(git_repo)) as repo:
        config = repo.get_config()
        del config[(b"user",)]
        config.write_to_path()
        with pytest.raises(GitError, match="GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL"):
            identity(repo, "", "")


def test_branches_checkout_and_log(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    with open_repo(workspace) as repo:
        checkout(repo, "feature", create=True)
        assert current_branch(repo) == "feature"
    commit_files(git_repo, {"feature.py": "y = 2\n"}, "Add feature\n\nLonger body.")
    with open_repo(workspace) as repo:
        assert branches(repo) == (["feature", "main"], [])
        checkout(repo, "main")
        assert not (git_repo / "feature.py").exists()
        with pytest.raises(GitError, match="no branch named 'nope'"):
            checkout(repo, "nope")
        entries = log(repo, limit=10, ref="feature")
        assert [(e.author, e.subject) for e in entries] == [("Ada", "Add feature"), ("Ada", "Initial commit")]
        assert log(repo, limit=1, ref="feature", path="app.py")[0].subject == "Initial commit"
        assert entries[0].line().startswith(f"{entries[0].sha[:7]} ")
        with pytest.raises(GitError, match="unknown revision 'nope'"):
            log(repo, limit=1, ref="nope")


def test_checkout_refuses_to_overwrite_local_changes(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    with open_repo(workspace) as repo:
        checkout(repo, "other", create=True)
    commit_files(git_repo, {"app.py": "print('other')\n"}, "Other")
    (git_repo / "app.py").write_text("local edit\n")
    with open_repo(workspace) as repo, pytest.raises(GitError, match="would be overwritten"):
        checkout(repo, "main")
    assert (git_repo / "app.py").read_text() == "local edit\n"


def test_the_last_change_is_the_newest_changed_file_or_a_deleted_files_folder(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    with open_repo(workspace) as repo:
        assert last_change(workspace, status(workspace, repo)) == 0.0
    (git_repo / "app.py").write_text("print('v2')\n")
    os.utime(git_repo / "app.py", (1_000_000, 1_000_000))
    with open_repo(workspace) as repo:
        assert last_change(workspace, status(workspace, repo)) == 1_000_000
    before = time.time()
    (git_repo / "README.md").unlink()
    with open_repo(workspace) as repo:
        assert last_change(workspace, status(workspace, repo)) >= before - 1


def test_no_git_hook_runs(git_repo: Path) -> None:
    workspace = Workspace(git_repo)
    hooks = git_repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "commit-msg", "post-commit"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {git_repo.parent / name}\nexit 1\n")
        (hooks / name).chmod(0o755)
    (git_repo / "app.py").write_text("print('v2')\n")
    with open_repo(workspace) as repo:
        stage(workspace, repo, ["app.py"])
        sha = commit(repo, "Hooked", identity(repo, "", ""))
        assert resolve(repo, "HEAD") == sha
    assert [name for name in ("pre-commit", "commit-msg", "post-commit") if (git_repo.parent / name).exists()] == []


@pytest.mark.parametrize("name", ["HEAD", "-f", "../../escape", "a..b", "bad name", "main:refs/heads/x", "/abs"])
def test_a_new_branch_needs_a_valid_name(git_repo: Path, name: str) -> None:
    with open_repo(Workspace(git_repo)) as repo:
        with pytest.raises(GitError, match=r"cannot be a branch name|is not a valid branch name"):
            checkout(repo, name, create=True)
        assert current_branch(repo) == "main"
