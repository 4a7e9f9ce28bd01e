"""The git tools as the model calls them: argument names and aliases, policies, and their answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from app.tools.base import ToolContext, ToolError
from app.tools.git.tools import GIT_TOOLS
from tests.unit.tools.git.conftest import commit_files

TOOLS = {tool.name: tool for tool in GIT_TOOLS}


def call(ctx: ToolContext, tool: str, **args: Any) -> str:
    result = TOOLS[tool].run(ctx, args)
    assert isinstance(result, str)
    return result


def test_schemas_advertise_the_node_lynkr_names() -> None:
    properties = {name: list(tool.input_schema["properties"]) for name, tool in TOOLS.items()}
    assert properties == {
        "workspace_git_status": [], "workspace_diff": ["path", "staged", "from", "to"],
        "workspace_git_stage": ["paths", "all"], "workspace_git_unstage": ["paths", "all"],
        "workspace_git_commit": ["message", "amend"], "workspace_git_push": ["remote", "branch"],
        "workspace_git_pull": ["remote", "branch", "ff_only"], "workspace_git_branches": [],
        "workspace_git_checkout": ["branch", "create"], "workspace_git_log": ["limit", "ref", "path"],
    }
    required = {name: tool.input_schema.get("required") for name, tool in TOOLS.items() if "required" in
                tool.input_schema}
    assert required == {"workspace_git_commit": ["message"], "workspace_git_checkout": ["branch"]}
    assert all(tool.duplicates == () for tool in GIT_TOOLS)


def test_stage_commit_and_log_with_aliases(database: Any, make_ctx: Any, git_repo: Path) -> None:
    ctx = make_ctx(git_author_name="Lynkr Bot", git_author_email="bot@example.com")
    assert call(ctx, "workspace_git_commit", msg="Nothing yet") == \
        "Nothing is staged, so nothing was committed. Stage files with workspace_git_stage first."
    (git_repo / "app.py").write_text("print('v2')\n")
    (git_repo / "notes.txt").write_text("n\n")
    assert call(ctx, "workspace_git_commit", message="Early") == (
        "Nothing is staged, so nothing was committed (2 changed or new files are not staged). Stage files with "
        "workspace_git_stage first.")
    assert call(ctx, "workspace_git_stage", file="app.py") == "Staged 1 path: app.py"
    assert call(ctx, "workspace_git_stage", all=True) == "Staged 1 path: notes.txt"  # app.py already is
    assert call(ctx, "workspace_git_unstage", path="notes.txt") == \
        "Unstaged 1 path (the files keep their changes): notes.txt"
    result = call(ctx, "workspace_git_commit", msg="Print v2\n\nBody.")
    assert re.fullmatch(r"Committed [0-9a-f]{7} on main: Print v2 \(1 file\)", result)
    assert call(ctx, "workspace_git_status") == "On branch main\nUntracked:\n  notes.txt"
    log = call(ctx, "workspace_git_log", n=5).splitlines()
    assert [line.split(" ", 3)[3] for line in log] == ["Lynkr Bot: Print v2", "Ada: Initial commit"]
    assert call(ctx, "workspace_git_log", limit=1, file="README.md").endswith("Ada: Initial commit")


def test_diff_arguments(database: Any, ctx: ToolContext, git_repo: Path) -> None:
    assert call(ctx, "workspace_diff") == "No unstaged changes."
    assert call(ctx, "workspace_diff", staged=True) == "No staged changes."
    (git_repo / "app.py").write_text("print('v2')\n")
    assert call(ctx, "workspace_diff", path="app.py").splitlines()[-1] == "+print('v2')"
    assert call(ctx, "workspace_diff", path="README.md") == "No unstaged changes in README.md."
    assert call(ctx, "workspace_diff", **{"from": "HEAD", "to": "main"}) == \
        "No differences between HEAD and main."
    with pytest.raises(ToolError, match="argument 'to' needs 'from' as well"):
        call(ctx, "workspace_diff", to="HEAD")
    with pytest.raises(ToolError, match="give either staged or from/to, not both"):
        call(ctx, "workspace_diff", staged=True, **{"from": "HEAD"})


def test_commit_policies(database: Any, make_ctx: Any, git_repo: Path) -> None:
    (git_repo / "app.py").write_text("print('v2')\n")
    ctx = make_ctx(policy_git_commit_regex=r"^(feat|fix): ", policy_git_require_tests=True)
    call(ctx, "workspace_git_stage", paths=["app.py"])
    with pytest.raises(ToolError, match="POLICY_GIT_COMMIT_REGEX"):
        call(ctx, "workspace_git_commit", message="print v2")
    with pytest.raises(ToolError, match="no test command is configured"):
        call(ctx, "workspace_git_commit", message="fix: print v2")
    with Repo(str(git_repo)) as repo:
        assert len(list(repo.get_walker())) == 1


def test_branches_and_checkout(database: Any, ctx: ToolContext, git_repo: Path) -> None:
    assert call(ctx, "workspace_git_branches") == "* main"
    assert call(ctx, "workspace_git_checkout", name="feature", create=True) == "Switched to a new branch 'feature'."
    assert call(ctx, "workspace_git_branches") == "* feature\n  main"
    assert call(ctx, "workspace_git_checkout", branch="main") == "Switched to branch 'main'."
    with pytest.raises(ToolError, match="no branch named 'ghost'"):
        call(ctx, "workspace_git_checkout", branch="ghost")


def test_push_is_refused_by_policy_before_anything_else(database: Any, ctx: ToolContext, git_repo: Path) -> None:
    with pytest.raises(ToolError, match=r"POLICY_GIT_ALLOW_PUSH=false"):
        call(ctx, "workspace_git_push", remote="does-not-exist")


def test_push_and_pull_with_a_bare_remote(database: Any, make_ctx: Any, git_repo: Path, bare_remote: Path) -> None:
    ctx = make_ctx(policy_git_allow_push=True)
    assert re.fullmatch(r"Pushed main \([0-9a-f]{7}\) to origin\.", call(ctx, "workspace_git_push"))
    with Repo(str(bare_remote)) as remote, Repo(str(git_repo)) as local:
        assert remote.refs[b"refs/heads/main"] == local.refs[b"refs/heads/main"]
    assert call(ctx, "workspace_git_pull", ref="main") == "Already up to date with origin/main."
    with pytest.raises(ToolError, match=r"no remote named 'upstream' \(configured: origin\)"):
        call(ctx, "workspace_git_pull", remote="upstream")
    for tool in ("workspace_git_pull", "workspace_git_push"):
        with pytest.raises(ToolError, match="'main:refs/heads/x' cannot be a branch name"):
            call(ctx, tool, branch="main:refs/heads/x")
    (git_repo / "app.py").write_text("dirty\n")
    with pytest.raises(ToolError, match="uncommitted changes to tracked files"):
        call(ctx, "workspace_git_pull")


def test_tools_refuse_a_workspace_without_a_repository(database: Any, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="the workspace root is not a git repository"):
        call(ctx, "workspace_git_status")


def test_commit_result_names_the_new_head(database: Any, ctx: ToolContext, git_repo: Path) -> None:
    commit_files(git_repo, {"b.py": "b = 1\n"}, "Add b")
    (git_repo / "b.py").write_text("b = 2\n")
    call(ctx, "workspace_git_stage", paths="b.py")
    result = call(ctx, "workspace_git_commit", message="Change b", amend=True)
    with Repo(str(git_repo)) as repo:
        assert result == f"Amended {repo.head().decode()[:7]} on main: Change b (1 file)"


def test_a_directory_stands_for_its_changed_files_and_never_a_denied_one(
        database: Any, make_ctx: Any, git_repo: Path) -> None:
    ctx = make_ctx(policy_file_blocked_paths=("*.secret",))
    (git_repo / "conf").mkdir()
    (git_repo / "conf/app.toml").write_text("a = 1\n")
    (git_repo / "conf/token.secret").write_text("s3cr3t\n")
    (git_repo / "conf/.env").write_text("KEY=1\n")
    (git_repo / "other.py").write_text("x = 1\n")
    assert call(ctx, "workspace_git_stage", paths=["conf"]) == "Staged 1 path: conf/app.toml"
    assert call(ctx, "workspace_git_stage", all=True) == "Staged 1 path: other.py"
    assert call(ctx, "workspace_git_status") == \
        "On branch main\nStaged (will be committed):\n  added: conf/app.toml\n  added: other.py"
    assert call(ctx, "workspace_git_unstage", paths="conf") == \
        "Unstaged 1 path (the files keep their changes): conf/app.toml"


def test_a_gitignored_file_named_outright_is_not_staged(database: Any, ctx: ToolContext, git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text("*.log\n")
    (git_repo / "run.log").write_text("log\n")
    assert call(ctx, "workspace_git_stage", paths=[".gitignore", "run.log"]) == (
        "Staged 1 path: .gitignore\nNot staged, ignored by .gitignore: run.log")
