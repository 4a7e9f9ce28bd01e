"""workspace_search: the same cases through ripgrep and through the Python fallback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.tools import search
from app.tools.base import ToolContext, ToolError, bool_arg
from app.tools.process import ProcessResult
from app.tools.search import SEARCH_TOOLS, search_workspace

HAS_RG = shutil.which("rg") is not None


@pytest.fixture(params=[pytest.param(True, id="ripgrep"), pytest.param(False, id="python")])
def use_ripgrep(request: pytest.FixtureRequest) -> bool:
    """Which backend the test runs: every case runs on both (.ci/run installs ripgrep)."""
    if request.param and not HAS_RG:
        pytest.fail("ripgrep (rg) is not installed: apt-get install ripgrep")
    return bool(request.param)


@pytest.fixture
def grep(ctx: ToolContext, use_ripgrep: bool) -> Any:
    """Runs workspace_search with the test's backend."""

    def run(context: ToolContext | None = None, **args: Any) -> str:
        return search_workspace(context or ctx, args, use_ripgrep=use_ripgrep)

    return run


@pytest.fixture
def tree(workspace_dir: Path, tmp_path: Path) -> Path:
    """A project with code, skipped directories, secrets and symlinks pointing out."""
    files = {
        "aa.py": "needle = 1\n", "aa/b.py": "x = 'needle'\n", "src/app.py": "import os\nNEEDLE = os.sep\n",
        "src/notes.md": "a needle in the docs\n", "docs/guide.txt": "no match here\n",
        ".env": "needle=secret\n", "config/.env.local": "needle\n", "id_rsa": "needle\n", "tls/x.pem": "needle\n",
        "node_modules/lib/index.js": "needle\n", ".git/HEAD": "needle\n", ".venv/lib/x.py": "needle\n",
        "src/__pycache__/app.pyc": "needle\n", "build/gen.py": "needle\n", ".gitignore": "build/\n",
    }
    for name, text in files.items():
        (workspace_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace_dir / name).write_text(text)
    (workspace_dir / "blob.bin").write_bytes(b"needle\0\0binary")
    (tmp_path / "outside" / "secret.txt").write_text("needle outside\n")
    (workspace_dir / "leak.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (workspace_dir / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (workspace_dir / "alias.py").symlink_to("aa.py")
    return workspace_dir


EXPECTED = "aa/b.py:1:x = 'needle'\naa.py:1:needle = 1\nsrc/notes.md:1:a needle in the docs"


def test_finds_matches_and_skips_what_tools_may_not_see(grep: Any, tree: Path) -> None:
    assert grep(pattern="needle") == EXPECTED


def test_a_secret_file_holding_the_pattern_never_shows(grep: Any, tree: Path) -> None:
    assert grep(pattern="needle=secret|outside") == "No matches for 'needle=secret|outside'"
    assert grep(pattern="secret", path="config") == "No matches for 'secret'"


def test_protected_and_policy_blocked_files_never_show(make_ctx: Any, grep: Any, tree: Path) -> None:
    for name in ("state/sessions", "vault/key.txt"):
        (tree / name).parent.mkdir()
        (tree / name).write_text("needle\n")
    ctx = make_ctx(session_db_path=str(tree / "state" / "sessions"), policy_file_blocked_paths=("vault/",))
    assert grep(ctx, pattern="needle") == EXPECTED


def test_case_insensitive(grep: Any, tree: Path) -> None:
    expected = ("aa/b.py:1:x = 'needle'\naa.py:1:needle = 1\nsrc/app.py:2:NEEDLE = os.sep\n"
                "src/notes.md:1:a needle in the docs")
    assert grep(pattern="needle", case_insensitive=True) == expected
    assert grep(query="needle", **{"-i": True}) == expected
    assert grep(pattern="needle", case_insensitive="TRUE") == expected
    assert grep(pattern="needle", case_insensitive="False") == EXPECTED
    with pytest.raises(ToolError, match="argument 'case_insensitive' must be true or false"):
        grep(pattern="needle", case_insensitive="yes")


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("true", True), ("TRUE", True), ("True", True),
    ("false", False), ("FALSE", False), ("False", False),
])
def test_bool_arg_spellings(value: Any, expected: bool) -> None:
    assert bool_arg({"flag": value}, "flag") is expected
    assert bool_arg({"-f": value}, "flag", "-f") is expected  # an alias


def test_bool_arg_default_and_bad_values() -> None:
    assert bool_arg({}, "flag") is False
    assert bool_arg({"flag": None}, "flag", default=True) is True
    for bad in ("yes", "1", "", 1, 0, [], {}):
        with pytest.raises(ToolError, match="argument 'flag' must be true or false"):
            bool_arg({"-f": bad}, "flag", "-f")


def test_glob_filters_files(grep: Any, tree: Path) -> None:
    assert grep(pattern="needle", glob="*.md") == "src/notes.md:1:a needle in the docs"
    assert grep(pattern="needle", glob="src/*.py", case_insensitive=True) == "src/app.py:2:NEEDLE = os.sep"
    assert grep(pattern="needle", glob="*.{md,txt}") == "src/notes.md:1:a needle in the docs"
    assert grep(pattern="needle", glob="!*.py") == "src/notes.md:1:a needle in the docs"


def test_path_narrows_the_search(grep: Any, tree: Path) -> None:
    assert grep(pattern="needle", path="aa") == "aa/b.py:1:x = 'needle'"
    assert grep(pattern="needle", path="src/notes.md") == "src/notes.md:1:a needle in the docs"
    assert grep(pattern="needle", path="build") == "build/gen.py:1:needle"  # asked for by name, so searched


def test_regex_and_line_numbers(grep: Any, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("alpha\nbeta 42\r\ngamma 7\n")
    assert grep(pattern=r"\d+$") == "a.txt:3:gamma 7"
    assert grep(pattern=r"^(beta|gamma) \d") == "a.txt:2:beta 42\na.txt:3:gamma 7"


def test_long_lines_are_clipped(grep: Any, workspace_dir: Path) -> None:
    (workspace_dir / "min.js").write_text("needle" + "x" * 3000 + "\n")
    assert grep(pattern="needle") == "min.js:1:needle" + "x" * 494 + " …"


def test_results_are_capped(grep: Any, workspace_dir: Path) -> None:
    (workspace_dir / "many.txt").write_text("hit\n" * 10)
    assert grep(pattern="hit", limit=3) == (
        "many.txt:1:hit\nmany.txt:2:hit\nmany.txt:3:hit\n"
        "… [more matches not shown; narrow the pattern, path or glob, or raise limit]")


def test_output_is_truncated_to_the_result_limit(make_ctx: Any, grep: Any, workspace_dir: Path) -> None:
    (workspace_dir / "many.txt").write_text("hit\n" * 10)
    assert grep(make_ctx(tool_result_max_chars=20), pattern="hit") == \
        "many.txt:1:hit\nmany.\n… [truncated: 130 more characters]"


@pytest.mark.parametrize("pattern", ["foo; touch pwned", "$(touch pwned)", "`touch pwned`", "needle' -e 'x"])
def test_shell_syntax_in_a_pattern_is_only_a_regex(grep: Any, workspace_dir: Path, pattern: str) -> None:
    (workspace_dir / "a.txt").write_text("foo; touch pwned\n")
    result = grep(pattern=pattern)
    assert result in {"a.txt:1:foo; touch pwned", f"No matches for '{pattern}'"}
    assert sorted(os.listdir(workspace_dir)) == ["a.txt"]
    assert not Path("pwned").exists()


def test_invalid_regex_is_a_tool_error(grep: Any, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("x\n")
    with pytest.raises(ToolError, match=r"regular expression|regex parse error"):
        grep(pattern="(unclosed")


@pytest.mark.parametrize(("args", "message"), [
    ({"pattern": "x", "path": "../outside"}, "is outside the workspace"),
    ({"pattern": "x", "path": "out"}, "is outside the workspace"),
    ({"pattern": "x", "path": ".env"}, "matches the deny list"),
    ({"pattern": "x", "path": "nope"}, "'nope' does not exist"),
    ({"path": "."}, "missing required argument 'pattern'"),
    ({"pattern": ""}, "argument 'pattern' is empty"),
])
def test_refusals(grep: Any, tree: Path, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        grep(**args)


def test_python_fallback_when_rg_is_missing(ctx: ToolContext, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.shutil, "which", lambda name: None)
    assert SEARCH_TOOLS[0].run(ctx, {"pattern": "needle"}) == EXPECTED
    with pytest.raises(ToolError, match=r"ripgrep \(rg\) is not installed"):
        search_workspace(ctx, {"pattern": "needle"}, use_ripgrep=True)


def test_ripgrep_timeout_is_a_tool_error(ctx: ToolContext, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.shutil, "which", lambda name: "/usr/bin/rg")
    monkeypatch.setattr(search, "run_process", lambda *a, **k: ProcessResult(None, "", True, False, 30000.0))
    with pytest.raises(ToolError, match=r"the search took longer than 30 s; narrow the path or glob"):
        search_workspace(ctx, {"pattern": "needle"}, use_ripgrep=True)


def test_ripgrep_output_cut_in_the_middle_keeps_only_its_head(
        ctx: ToolContext, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = "aa.py\x001:needle = 1\nsrc/app.py\x002:NEE\n… [900 bytes of output left out] …\nzz.py\x009:tail\n"
    monkeypatch.setattr(search, "run_process", lambda *a, **k: ProcessResult(0, output, False, True, 5.0))
    assert search_workspace(ctx, {"pattern": "needle"}, use_ripgrep=True) == (
        "aa.py:1:needle = 1\nsrc/app.py:2:NEE\n"
        "… [more matches not shown; narrow the pattern, path or glob, or raise limit]")


def test_ripgrep_runs_as_an_argv_list_without_following_links(
        ctx: ToolContext, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def record(argv: list[str], **kwargs: Any) -> ProcessResult:
        calls.append((argv, kwargs))
        return ProcessResult(1, "", False, False, 1.0)

    monkeypatch.setattr(search, "run_process", record)
    monkeypatch.setattr(search.shutil, "which", lambda name: "/usr/bin/rg")
    assert search_workspace(ctx, {"pattern": "$(id)", "path": "src", "limit": 5000}) == "No matches for '$(id)'"
    ((argv, kwargs),) = calls
    assert argv[0] == "/usr/bin/rg"
    assert "--max-count=1001" in argv  # the limit is capped at 1000
    assert argv[-4:] == ["--regexp", "$(id)", "--", "src"]
    assert not {"-L", "--follow"} & set(argv)
    assert argv[argv.index("!.env") - 1:argv.index("!.env") + 1] == ["--glob", "!.env"]
    assert kwargs["cwd"] == tree


def test_tool_definition() -> None:
    (tool,) = SEARCH_TOOLS
    definition = tool.definition()
    assert (definition["name"], tool.duplicates) == ("workspace_search", ("Grep",))
    assert definition["input_schema"]["required"] == ["pattern"]
    assert "relative to the workspace root" in definition["description"]
