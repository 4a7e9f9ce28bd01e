"""Repository intelligence and git through ``/v1/messages``: a scripted model calls the tools on a real
repository (made with dulwich, with a bare repository as its push remote) and the tool results it is
sent back are checked — the seed's manual test matrix, automated."""

from __future__ import annotations

import io
import itertools
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from dulwich import porcelain
from dulwich.repo import Repo
from flask import Flask

from app.storage.db import db
from app.storage.models import ClientRequest, UpstreamAttempt
from app.tools.claude_md import END, START
from app.tools.index import languages
from tests.integration.test_agent_loop import ScriptedUpstream, answer, ask, text

AUTHOR = b"Ada <ada@example.com>"
_CALLS = itertools.count()
HAND_WRITTEN = ("# House rules\r\n\r\nUse tabs. \u2713 Never force-push.\r\n\r\n" + START.decode() + "\r\nstale\r\n"
                + END.decode() + "\r\n\r\n## Notes kept by hand\r\nlast line without newline")
SOURCES = {
    "src/widget.ts": "export class Widget {\n  draw(): void {}\n}\n",
    "src/panel.ts": "import { Widget } from './widget';\nexport const panel = new Widget();\npanel.draw();\n",
    "src/legacy.js": "function legacyHelper() { return 1; }\nmodule.exports = { legacyHelper };\n",
    "lib/cart.rb": "class Cart\n  def add_item(item)\n    items << item\n  end\nend\n",
    "app/main.py": "def main():\n    return 0\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A workspace repository with the sources committed on main, and a bare ``origin``."""
    root = tmp_path / "ws"
    root.mkdir()
    for path, content in SOURCES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    (root / "CLAUDE.md").write_bytes(HAND_WRITTEN.encode())
    remote = tmp_path / "origin.git"
    with Repo.init_bare(str(remote), mkdir=True) as bare:
        bare.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    with Repo.init(str(root)) as git:
        git.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        config = git.get_config()
        config.set((b"remote", b"origin"), b"url", str(remote).encode())
        config.write_to_path()
        porcelain.add(git, [str(root / path) for path in (*SOURCES, "CLAUDE.md")])
        porcelain.commit(git, message=b"Initial", author=AUTHOR, committer=AUTHOR, no_verify=True, env={})
    return root


@pytest.fixture
def gateway(make_app: Callable[..., Flask], repo: Path) -> Callable[..., Flask]:
    def build(**overrides: Any) -> Flask:
        settings = {"workspace_root": str(repo), "git_author_name": "Lynkr Bot", "git_author_email": "bot@example.com",
                    "workspace_test_sandbox": "never", "policy_max_steps": 12, "policy_max_tool_calls": 20}
        return make_app(**{**settings, **overrides})

    return build


def converse(app: Flask, mocked: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Have the model call each tool in turn (one per step), then answer; returns each tool result's text."""
    prefix = f"toolu_{next(_CALLS)}_"  # a repeated id in one session would get its stored result back
    script = [answer({"type": "tool_use", "id": f"{prefix}{index}", "name": name, "input": args})
              for index, (name, args) in enumerate(calls)]
    upstream = ScriptedUpstream(mocked, [*script, answer(text("Done."))])
    response = ask(app.test_client(), [{"role": "user", "content": "go"}])
    assert response.status_code == 200
    (final,) = response.get_json()["content"]
    assert final["text"].endswith("\nDone.")
    assert [line.split("(")[0] for line in final["text"].splitlines() if line.startswith("⚙ ")] == \
        [f"⚙ {name}" for name, _ in calls]  # the gateway's trace of the server-side calls
    results = []
    for index, body in enumerate(upstream.bodies[1:]):
        block = body["messages"][-1]["content"][0]
        assert block["type"] == "tool_result"
        assert block["tool_use_id"] == f"{prefix}{index}"
        content = block["content"]
        results.append(content if isinstance(content, str) else "".join(part["text"] for part in content))
    assert len(results) == len(calls)
    return results


@pytest.fixture
def mocked() -> Iterator[Any]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_the_tools_are_offered_beside_claude_codes_own(gateway: Callable[..., Flask], mocked: Any) -> None:
    upstream = ScriptedUpstream(mocked, [answer(text("Hi."))])
    claude_code_tools = [{"name": name, "input_schema": {"type": "object"}}
                         for name in ("Read", "Write", "Edit", "Bash", "Glob", "Grep", "WebFetch")]
    ask(gateway().test_client(), [{"role": "user", "content": "hi"}], tools=claude_code_tools)
    offered = {tool["name"] for tool in upstream.bodies[0]["tools"]}
    assert {"workspace_index_rebuild", "workspace_symbol_search", "workspace_symbol_references",
            "workspace_goto_definition", "project_summary", "workspace_git_status", "workspace_diff",
            "workspace_git_commit", "workspace_git_push", "workspace_git_pull"} <= offered


def test_rebuild_summary_and_catalog_then_a_deleted_file_disappears(
        gateway: Callable[..., Flask], mocked: Any, repo: Path) -> None:
    app = gateway()
    rebuilt, summary, catalog = converse(app, mocked, [
        ("workspace_index_rebuild", {}), ("project_summary", {}),
        ("workspace_symbol_search", {"query": "legacy", "match": "prefix"})])
    assert rebuilt.splitlines()[0].startswith("Indexed 5 files (5 parsed, 0 unchanged, 0 removed, 0 skipped, 0 failed)")
    assert "- typescript: 2 files, 6 lines\n" in summary
    assert "- javascript: 1 file, 2 lines\n" in summary
    assert catalog == "src/legacy.js:1:10 function legacyHelper"
    (repo / "src/legacy.js").unlink()
    rebuilt, summary, catalog = converse(app, mocked, [
        ("workspace_index_rebuild", {}), ("project_summary", {}),
        ("workspace_symbol_search", {"name": "legacyHelper"})])
    assert rebuilt.splitlines()[0].startswith("Indexed 4 files (0 parsed, 4 unchanged, 1 removed, 0 skipped")
    assert "javascript" not in summary
    assert catalog == "No symbols match 'legacyHelper'."


def test_a_typescript_symbol_imported_elsewhere(gateway: Callable[..., Flask], mocked: Any) -> None:
    definition, by_position, references = converse(gateway(), mocked, [
        ("workspace_goto_definition", {"symbol": "Widget"}),
        ("workspace_goto_definition", {"file": "src/panel.ts", "row": 2, "col": 26}),
        ("workspace_symbol_references", {"symbol": "Widget"})])
    assert definition == by_position == "src/widget.ts:1:14 class Widget: export class Widget {"
    assert references == ("src/panel.ts:1:10: import { Widget } from './widget';\n"
                          "src/panel.ts:2:26: export const panel = new Widget();")
    assert "src/widget.ts" not in references


def test_a_ruby_file_without_its_grammar_goes_to_the_patterns(
        gateway: Callable[..., Flask], mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(languages._GRAMMARS, "ruby")
    languages.grammar.cache_clear()
    try:
        rebuilt, found = converse(gateway(), mocked, [
            ("workspace_index_rebuild", {}), ("workspace_symbol_search", {"query": "add_item"})])
    finally:
        languages.grammar.cache_clear()
    assert ", 0 failed)" in rebuilt.splitlines()[0]
    assert found == "lib/cart.rb:2:7 method add_item (in Cart)"


def test_the_hand_written_claude_md_keeps_every_byte_outside_the_markers(
        gateway: Callable[..., Flask], mocked: Any, repo: Path) -> None:
    converse(gateway(), mocked, [("workspace_index_rebuild", {})])
    written = (repo / "CLAUDE.md").read_bytes()
    head, tail = HAND_WRITTEN.encode().split(START)[0], HAND_WRITTEN.encode().split(END)[1]
    assert written.startswith(head + START + b"\r\n# Project summary\r\n")
    assert written.endswith(END + tail)
    assert b"stale" not in written
    converse(gateway(index_write_claude_md=False), mocked, [("workspace_index_rebuild", {})])
    assert (repo / "CLAUDE.md").read_bytes() == written


def test_push_is_denied_by_default_and_goes_through_when_allowed(
        gateway: Callable[..., Flask], mocked: Any, repo: Path, tmp_path: Path) -> None:
    denied, typed = converse(gateway(), mocked, [("workspace_git_push", {}),
                                                 ("shell", {"command": "git push origin main"})])
    assert denied == ("pushing is disabled by the gateway's policy (POLICY_GIT_ALLOW_PUSH=false); the operator must "
                      "set POLICY_GIT_ALLOW_PUSH=true to allow it")
    assert typed == f"refused: {denied}."
    (pushed,) = converse(gateway(policy_git_allow_push=True), mocked, [("workspace_git_push", {"ref": "main"})])
    assert re.fullmatch(r"Pushed main \([0-9a-f]{7}\) to origin\.", pushed)
    with Repo(str(tmp_path / "origin.git")) as remote, Repo(str(repo)) as local:
        assert remote.refs[b"refs/heads/main"] == local.refs[b"refs/heads/main"]


def test_a_commit_waits_for_a_passing_test_run_after_the_last_change(
        gateway: Callable[..., Flask], mocked: Any, repo: Path) -> None:
    command = shlex.join([sys.executable, "-c", "print('3 passed in 0.01s')"])
    app = gateway(policy_git_require_tests=True, workspace_test_command=command)
    (repo / "app/main.py").write_text("def main():\n    return 1\n")
    staged, blocked, tested, committed, status = converse(app, mocked, [
        ("workspace_git_stage", {"paths": ["app/main.py"]}),
        ("workspace_git_commit", {"message": "Return 1"}),
        ("workspace_test_run", {}),
        ("workspace_git_commit", {"msg": "Return 1"}),
        ("workspace_git_status", {})])
    assert staged == "Staged 1 path: app/main.py"
    assert blocked.startswith("POLICY_GIT_REQUIRE_TESTS: no run of ")
    assert "since the working tree last changed" in blocked
    assert tested.startswith("Test run #1: passed — 3 passed, 0 failed, 0 skipped, 0 errors")
    assert re.fullmatch(r"Committed [0-9a-f]{7} on main: Return 1 \(1 file\)", committed)
    assert status == "On branch main\nNothing to commit, working tree clean."
    with Repo(str(repo)) as git:
        head = git[git.head()]
        assert (head.message, head.author) == (b"Return 1", b"Lynkr Bot <bot@example.com>")


def test_pull_fast_forwards_from_the_remote(gateway: Callable[..., Flask], mocked: Any, repo: Path,
                                            tmp_path: Path) -> None:
    converse(gateway(policy_git_allow_push=True), mocked, [("workspace_git_push", {})])
    other = tmp_path / "other"
    with porcelain.clone(str(tmp_path / "origin.git"), str(other), errstream=io.BytesIO()) as clone:
        (other / "NEWS.md").write_text("news\n")
        porcelain.add(clone, [str(other / "NEWS.md")])
        porcelain.commit(clone, message=b"News", author=AUTHOR, committer=AUTHOR, no_verify=True, env={})
        porcelain.push(clone, "origin", "refs/heads/main:refs/heads/main", outstream=io.BytesIO(),
                       errstream=io.BytesIO())
    pulled, log = converse(gateway(), mocked, [("workspace_git_pull", {}), ("workspace_git_log", {"limit": 2})])
    assert pulled.startswith("Updated main from origin/main: ")
    assert (repo / "NEWS.md").read_text() == "news\n"
    assert [line.split(": ", 1)[1] for line in log.splitlines()] == ["News", "Initial"]


def test_a_diff_review_asks_the_gateways_own_model_and_is_recorded(
        gateway: Callable[..., Flask], mocked: Any, repo: Path) -> None:
    (repo / "app" / "main.py").write_text("def main():\n    return 2\n")
    app = gateway()
    upstream = ScriptedUpstream(mocked, [
        answer({"type": "tool_use", "id": "toolu_review_0", "name": "workspace_diff_review", "input": {}}),
        answer(text("## Risks\n- none")),  # the tool's own model call
        answer(text("Reviewed.")),
    ])
    response = ask(app.test_client(), [{"role": "user", "content": "review my change"}])

    assert response.status_code == 200
    request_id = response.headers["request-id"]
    review_call = upstream.bodies[1]
    assert review_call["system"].startswith("You are a careful senior engineer reviewing a change.")
    assert "app/main.py" in review_call["messages"][0]["content"]
    assert "tools" not in review_call
    result = upstream.bodies[2]["messages"][-1]["content"][0]
    assert result["tool_use_id"] == "toolu_review_0"
    assert "## Risks" in json.dumps(result["content"])
    app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        attempts = list(UpstreamAttempt.select().join(ClientRequest)
                        .where(ClientRequest.request_id == request_id).order_by(UpstreamAttempt.id).dicts())
    assert [a["status"] for a in attempts] == [200, 200, 200]
