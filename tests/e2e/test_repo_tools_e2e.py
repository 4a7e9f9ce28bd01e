"""Repository intelligence and git through ``lynkr serve`` (real gunicorn, two workers) on a real
repository: the fake upstream plays a model that rebuilds the index, looks a symbol up, stages and
commits a change, tries to push, and then answers — all in one client request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dulwich import porcelain
from dulwich.repo import Repo

from app.tools.claude_md import END, START
from tests.e2e.helpers import Gateway, message_body
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import Behaviour, FakeAnthropicUpstream, JsonReply, RecordedRequest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AUTHOR = b"Ada <ada@example.com>"
STEPS = [
    ("workspace_index_rebuild", {}),
    ("workspace_goto_definition", {"symbol": "Cart"}),
    ("workspace_git_stage", {"all": True}),
    ("workspace_git_commit", {"message": "Add a total"}),
    ("workspace_git_push", {}),
]


class RepoModel:
    """Calls each of :data:`STEPS` in turn (one per request the gateway sends), then says "Done."."""

    def __init__(self) -> None:
        self.results: list[str] = []

    def __call__(self, request: RecordedRequest) -> Behaviour | None:
        messages = request.body.get("messages") if isinstance(request.body, dict) else None
        if not messages:
            return None
        last = messages[-1]["content"]
        if isinstance(last, list):
            self.results += [block["content"] if isinstance(block["content"], str) else block["content"][0]["text"]
                             for block in last if block.get("type") == "tool_result"]
        step = len(self.results)
        if step < len(STEPS):
            name, arguments = STEPS[step]
            return JsonReply(ev.message([ev.tool_use_block(name, arguments, f"toolu_e2e_repo_{step}")],
                                        stop_reason="tool_use"))
        return JsonReply(ev.message([ev.text_block("Done.")]))


def make_repo(root: Path) -> None:
    root.mkdir()
    (root / "lib").mkdir()
    (root / "lib/cart.py").write_text("class Cart:\n    def add(self, item):\n        return item\n")
    (root / "CLAUDE.md").write_text("# Rules\nBe kind.\n")
    with Repo.init(str(root)) as git:
        git.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        config = git.get_config()
        config.set((b"remote", b"origin"), b"url", b"/nonexistent/origin.git")
        config.write_to_path()
        porcelain.add(git, [str(root / "lib/cart.py"), str(root / "CLAUDE.md")])
        porcelain.commit(git, message=b"Initial", author=AUTHOR, committer=AUTHOR, no_verify=True, env={})


def test_a_model_indexes_commits_and_is_refused_a_push_through_lynkr_serve(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, tmp_path: Path) -> None:
    workspace = tmp_path / "repo"
    make_repo(workspace)
    (workspace / "lib/cart.py").write_text("class Cart:\n    def add(self, item):\n        return item\n\n"
                                           "    def total(self):\n        return 0\n")
    mocked_upstream.responder = model = RepoModel()
    gateway = make_gateway(TOOL_EXECUTION_MODE="server", WORKSPACE_ROOT=str(workspace),
                           GIT_AUTHOR_NAME="Lynkr Bot", GIT_AUTHOR_EMAIL="bot@example.com")

    response = gateway.post(message_body("Index, commit and push."))

    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["content"][-1]["text"].endswith("Done.")
    rebuilt, definition, staged, committed, pushed = model.results
    assert rebuilt.startswith("Indexed 1 files (1 parsed, 0 unchanged, 0 removed, 0 skipped, 0 failed): 3 symbols")
    assert definition == "lib/cart.py:1:7 class Cart: class Cart:"
    assert staged == "Staged 2 paths: CLAUDE.md, lib/cart.py"
    assert committed.endswith(" on main: Add a total (2 files)")
    assert pushed == ("pushing is disabled by the gateway's policy (POLICY_GIT_ALLOW_PUSH=false); the operator "
                      "must set POLICY_GIT_ALLOW_PUSH=true to allow it")
    claude_md = (workspace / "CLAUDE.md").read_text()
    assert claude_md.startswith("# Rules\nBe kind.\n\n" + START.decode() + "\n# Project summary\n")
    assert claude_md.endswith(END.decode() + "\n")
    with Repo(str(workspace)) as git:
        head = git[git.head()]
        assert (head.message, head.author) == (b"Add a total", b"Lynkr Bot <bot@example.com>")
        status = porcelain.status(git)
    assert (status.staged, status.unstaged, status.untracked) == ({"add": [], "delete": [], "modify": []}, [], [])
