"""Diff review and release notes: what the model is asked, and the refusal without a model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from app.tools.base import ToolContext, ToolError
from app.tools.review import NOTES_SYSTEM, REVIEW_SYSTEM, REVIEW_TOOLS
from tests.unit.tools.git.conftest import commit_files, git_repo  # noqa: F401 (the git_repo fixture)

TOOLS = {tool.name: tool for tool in REVIEW_TOOLS}


class FakeModel:
    """Records each question and answers with a fixed text."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, system: str, prompt: str) -> str:
        self.asked.append((system, prompt))
        return "## Risks\n- none"


def test_without_the_gateways_model_the_tools_refuse(ctx: ToolContext, git_repo: Path) -> None:  # noqa: F811
    for tool in REVIEW_TOOLS:
        with pytest.raises(ToolError, match="needs the gateway's model"):
            tool.run(ctx, {"from": "HEAD"})


def test_the_review_sends_the_diff_without_denied_files(make_ctx: Any, git_repo: Path) -> None:  # noqa: F811
    model = FakeModel()
    ctx = replace(make_ctx(policy_file_blocked_paths=("secrets.yml",)), ask_model=model)
    commit_files(git_repo, {"secrets.yml": "key: 1\n"}, "Secrets")
    assert TOOLS["workspace_diff_review"].run(ctx, {}) == "No changes to review."
    assert model.asked == []
    (git_repo / "app.py").write_text("print('v2')\n")
    (git_repo / "secrets.yml").write_text("key: 2\n")
    assert TOOLS["workspace_diff_review"].run(ctx, {}) == "## Risks\n- none"
    ((system, prompt),) = model.asked
    assert system == REVIEW_SYSTEM
    assert prompt.startswith("Review this diff:\n\ndiff --git a/app.py b/app.py\n")
    assert "+print('v2')" in prompt
    assert "secrets.yml" not in prompt


def test_release_notes_list_the_commits_between_two_revisions(
        ctx: ToolContext, git_repo: Path) -> None:  # noqa: F811
    model = FakeModel()
    with Repo(str(git_repo)) as repo:
        initial = repo.head().decode()
    commit_files(git_repo, {"a.py": "a = 1\n"}, "feat: add a")
    second = commit_files(git_repo, {"b.py": "b = 1\n"}, "fix: b off by one\n\nDetails.").decode()
    result = TOOLS["workspace_release_notes"].run(replace(ctx, ask_model=model), {"from": initial, "to": second})
    assert result == "## Risks\n- none"
    ((system, prompt),) = model.asked
    assert system == NOTES_SYSTEM
    lines = prompt.splitlines()
    assert lines[0] == f"Commits after {initial} up to {second}, newest first:"
    assert lines[2] == f"{second[:7]} Ada: fix: b off by one"
    assert lines[-1].endswith("Ada: feat: add a")
    assert TOOLS["workspace_release_notes"].run(replace(ctx, ask_model=model), {"from": "main"}) == \
        "No commits between main and HEAD."

