"""fs_read, fs_write, edit_patch and workspace_list on a real temporary workspace."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.tools.base import ToolContext, ToolError
from app.tools.workspace import WORKSPACE_TOOLS

TOOLS = {tool.name: tool for tool in WORKSPACE_TOOLS}


def run(ctx: ToolContext, name: str, **args: Any) -> Any:
    """Run a workspace tool the way the agent loop does."""
    return TOOLS[name].run(ctx, args)


def snapshot(directory: Path) -> dict[str, Any]:
    """Every entry under ``directory``: file bytes, link targets, or 'dir' (symlinks not followed)."""
    entries: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = path.relative_to(directory).as_posix()
            if path.is_symlink():
                entries[key] = "-> " + os.readlink(path)
            else:
                entries[key] = "dir" if path.is_dir() else path.read_bytes()
    return entries


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """The directory beside the root, with a file no tool may read or change."""
    (tmp_path / "outside" / "secret.txt").write_text("outside secret\n")
    return tmp_path / "outside"


@pytest.fixture
def hostile(workspace_dir: Path, outside: Path) -> Path:
    """A workspace holding denied files and symlinks that lead out of the root."""
    (workspace_dir / ".env").write_text("TOKEN=abc\n")
    (workspace_dir / "id_rsa").write_text("PRIVATE KEY\n")
    (workspace_dir / "leak.txt").symlink_to(outside / "secret.txt")
    (workspace_dir / "out").symlink_to(outside, target_is_directory=True)
    (workspace_dir / "later.txt").symlink_to(outside / "not-yet.txt")
    return workspace_dir


REFUSED_PATHS = ["../outside/secret.txt", "../outside/new.txt", "leak.txt", "out/secret.txt", "out/new.txt",
                 "later.txt", ".env", "id_rsa", "sub/.env.local", "x.pem", "a\0b.txt"]


# fs_read

def test_read_numbers_lines_like_cat_n(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "src").mkdir()
    (workspace_dir / "src" / "a.py").write_text("import os\n\nprint(os.sep)\n")
    assert run(ctx, "fs_read", path="src/a.py") == "     1\timport os\n     2\t\n     3\tprint(os.sep)"
    assert run(ctx, "fs_read", file_path=str(workspace_dir / "src" / "a.py")).startswith("     1\timport os")


def test_read_line_ranges(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "n.txt").write_text("".join(f"line {n}\n" for n in range(1, 21)))
    assert run(ctx, "fs_read", path="n.txt", offset=3, limit=2) == "     3\tline 3\n     4\tline 4"
    assert run(ctx, "fs_read", path="n.txt", line_start=19, line_end=25) == "    19\tline 19\n    20\tline 20"
    assert run(ctx, "fs_read", path="n.txt", offset="20") == "    20\tline 20"
    with pytest.raises(ToolError, match=r"'n.txt' has 20 lines; offset 21 is past the end"):
        run(ctx, "fs_read", path="n.txt", offset=21)
    with pytest.raises(ToolError, match=r"line_end 2 is before the first line 5"):
        run(ctx, "fs_read", path="n.txt", offset=5, line_end=2)
    with pytest.raises(ToolError, match=r"argument 'offset' must be at least 1"):
        run(ctx, "fs_read", path="n.txt", offset=0)


def test_read_stops_at_the_output_limit_on_a_whole_line(make_ctx: Any, workspace_dir: Path) -> None:
    (workspace_dir / "n.txt").write_text("".join(f"line {n}\n" for n in range(1, 101)))
    ctx = make_ctx(tool_result_max_chars=40)
    assert run(ctx, "fs_read", path="n.txt") == (
        "     1\tline 1\n     2\tline 2\n"
        "… [output limit of 40 characters reached; read on with offset=3]")
    assert run(ctx, "fs_read", path="n.txt", offset=3).startswith("     3\tline 3\n     4\tline 4\n… [")


def test_read_truncates_a_line_longer_than_the_limit(make_ctx: Any, workspace_dir: Path) -> None:
    (workspace_dir / "wide.txt").write_text("x" * 100 + "\nnext\n")
    text = run(make_ctx(tool_result_max_chars=20), "fs_read", path="wide.txt")
    assert text == ("     1\t" + "x" * 13 + "\n… [truncated: 87 more characters]"
                    "\n… [output limit of 20 characters reached; read on with offset=2]")


def test_read_shows_windows_lines_and_bad_bytes_as_text(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "w.txt").write_bytes(b"one\r\ntwo \xff\r\n")
    assert run(ctx, "fs_read", path="w.txt") == "     1\tone\n     2\ttwo \ufffd"


def test_read_empty_file_and_refuses_directories_binaries_and_missing_files(
        ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "empty.txt").write_text("")
    assert run(ctx, "fs_read", path="empty.txt") == "empty.txt is empty"
    (workspace_dir / "pkg").mkdir()
    (workspace_dir / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(ToolError, match=r"'pkg' is a directory; use workspace_list to see its files"):
        run(ctx, "fs_read", path="pkg")
    with pytest.raises(ToolError, match=r"'.' is a directory"):
        run(ctx, "fs_read", path=".")
    with pytest.raises(ToolError, match=r"'img.png' is a binary file"):
        run(ctx, "fs_read", path="img.png")
    with pytest.raises(ToolError, match=r"'nope.txt' does not exist"):
        run(ctx, "fs_read", path="nope.txt")
    with pytest.raises(ToolError, match=r"missing required argument 'path'"):
        run(ctx, "fs_read")


@pytest.mark.parametrize("path", REFUSED_PATHS)
def test_read_refusals(ctx: ToolContext, hostile: Path, outside: Path, path: str) -> None:
    with pytest.raises(ToolError, match=r"outside the workspace|deny list|NUL bytes"):
        run(ctx, "fs_read", path=path)


# fs_write

def test_write_creates_parent_directories(ctx: ToolContext, workspace_dir: Path) -> None:
    assert run(ctx, "fs_write", path="src/pkg/a.py", content="print('hi')\n") == "Wrote 12 bytes to src/pkg/a.py"
    assert (workspace_dir / "src" / "pkg" / "a.py").read_text() == "print('hi')\n"
    assert stat.S_IMODE((workspace_dir / "src" / "pkg" / "a.py").stat().st_mode) == 0o644
    assert run(ctx, "fs_write", file_path="empty.txt", content="") == "Wrote 0 bytes to empty.txt"
    assert snapshot(workspace_dir) == {"src": "dir", "src/pkg": "dir", "src/pkg/a.py": b"print('hi')\n",
                                       "empty.txt": b""}


def test_write_overwrites_keeping_permissions_and_leaves_no_temporary_file(
        ctx: ToolContext, workspace_dir: Path) -> None:
    script = workspace_dir / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o755)
    assert run(ctx, "fs_write", path="run.sh", content="echo né\n") == "Wrote 9 bytes to run.sh"
    assert script.read_text() == "echo né\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert sorted(os.listdir(workspace_dir)) == ["run.sh"]


def test_write_failure_leaves_the_old_file_whole(ctx: ToolContext, workspace_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace_dir / "a.txt").write_text("old\n")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ToolError, match=r"No space left on device"):
        run(ctx, "fs_write", path="a.txt", content="new\n")
    assert snapshot(workspace_dir) == {"a.txt": b"old\n"}


def test_write_through_an_inside_symlink_writes_its_target(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "real.txt").write_text("old")
    (workspace_dir / "alias.txt").symlink_to("real.txt")
    assert run(ctx, "fs_write", path="alias.txt", content="new") == "Wrote 3 bytes to real.txt"
    assert (workspace_dir / "real.txt").read_text() == "new"
    assert (workspace_dir / "alias.txt").is_symlink()


def test_write_refuses_directories_and_the_root(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "pkg").mkdir()
    with pytest.raises(ToolError, match=r"'pkg' is a directory"):
        run(ctx, "fs_write", path="pkg", content="x")
    with pytest.raises(ToolError, match=r"the workspace root itself cannot be used here"):
        run(ctx, "fs_write", path=".", content="x")
    with pytest.raises(ToolError, match=r"missing required argument 'content'"):
        run(ctx, "fs_write", path="a.txt")


@pytest.mark.parametrize("path", [*REFUSED_PATHS, str(Path("/tmp") / "lynkr-never-written.txt")])
def test_write_refusals_touch_nothing(ctx: ToolContext, hostile: Path, outside: Path, path: str) -> None:
    before, outside_before = snapshot(hostile), snapshot(outside)
    with pytest.raises(ToolError, match=r"outside the workspace|deny list|NUL bytes"):
        run(ctx, "fs_write", path=path, content="pwned\n")
    assert snapshot(hostile) == before
    assert snapshot(outside) == outside_before == {"secret.txt": b"outside secret\n"}
    assert not Path("/tmp/lynkr-never-written.txt").exists()


# edit_patch: exact replacement

def test_edit_replaces_a_unique_string(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "a.py").write_text("x = 1\ny = 2\n")
    assert run(ctx, "edit_patch", file_path="a.py", old_string="y = 2", new_string="y = 3") == \
        "Replaced 1 occurrence in a.py"
    assert (workspace_dir / "a.py").read_text() == "x = 1\ny = 3\n"


def test_edit_replace_all_counts(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("a-a-a")
    with pytest.raises(ToolError) as refused:
        run(ctx, "edit_patch", path="a.txt", old_string="a", new_string="b")
    assert str(refused.value) == ("'a.txt': old_string occurs 3 times; include more surrounding text to make it "
                                  "unique, or set replace_all to change every occurrence")
    assert (workspace_dir / "a.txt").read_text() == "a-a-a"
    assert run(ctx, "edit_patch", path="a.txt", old_string="a", new_string="b", replace_all="true") == \
        "Replaced 3 occurrences in a.txt"
    assert (workspace_dir / "a.txt").read_text() == "b-b-b"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("zzz", "y", "'a.txt': old_string was not found; read the file and copy the text exactly"),
    ("abc", "abc", "'a.txt': old_string and new_string are the same, so there is nothing to change"),
    ("", "x", "'a.txt': old_string is empty; use fs_write to create or overwrite a file"),
])
def test_edit_refusals_leave_the_file(ctx: ToolContext, workspace_dir: Path, old: str, new: str,
                                      message: str) -> None:
    (workspace_dir / "a.txt").write_text("abc\n")
    with pytest.raises(ToolError) as refused:
        run(ctx, "edit_patch", path="a.txt", old_string=old, new_string=new)
    assert str(refused.value) == message
    assert snapshot(workspace_dir) == {"a.txt": b"abc\n"}


def test_edit_matches_newlines_in_a_windows_file(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    run(ctx, "edit_patch", path="w.txt", old_string="one\ntwo", new_string="one\n2")
    assert (workspace_dir / "w.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"


def test_several_edits_apply_in_order_or_not_at_all(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("alpha beta\n")
    edits = [{"old_string": "alpha", "new_string": "gamma"}, {"old_string": "gamma beta", "new_string": "done"}]
    assert run(ctx, "edit_patch", path="a.txt", edits=edits) == "Replaced 2 occurrences in a.txt"
    assert (workspace_dir / "a.txt").read_text() == "done\n"
    failing = [{"old_string": "done", "new_string": "x"}, {"old_string": "missing", "new_string": "y"}]
    with pytest.raises(ToolError, match=r"^edit 2: 'a.txt': old_string was not found"):
        run(ctx, "edit_patch", path="a.txt", edits=failing)
    assert (workspace_dir / "a.txt").read_text() == "done\n"


def test_edit_refuses_binary_and_non_utf8_files(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "b.bin").write_bytes(b"ab\0cd")
    (workspace_dir / "latin.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ToolError, match=r"'b.bin' is a binary file"):
        run(ctx, "edit_patch", path="b.bin", old_string="ab", new_string="x")
    with pytest.raises(ToolError, match=r"'latin.txt' is not UTF-8 text"):
        run(ctx, "edit_patch", path="latin.txt", old_string="caf", new_string="x")
    assert (workspace_dir / "latin.txt").read_bytes() == b"caf\xe9\n"


@pytest.mark.parametrize("path", ["../outside/secret.txt", "leak.txt", "out/secret.txt", ".env", "id_rsa"])
def test_edit_refusals_touch_nothing(ctx: ToolContext, hostile: Path, outside: Path, path: str) -> None:
    before, outside_before = snapshot(hostile), snapshot(outside)
    for secret in ("outside secret", "TOKEN=abc", "PRIVATE KEY"):
        with pytest.raises(ToolError, match=r"outside the workspace|deny list"):
            run(ctx, "edit_patch", path=path, old_string=secret, new_string="pwned")
    assert (snapshot(hostile), snapshot(outside)) == (before, outside_before)


# edit_patch: unified diffs

PATCH_TWO_FILES = ("--- a/src/a.py\n+++ b/src/a.py\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
                   "--- /dev/null\n+++ b/src/new/b.py\n@@ -0,0 +1,2 @@\n+print('b')\n+print('c')\n")


def test_patch_modifies_and_creates_files(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "src").mkdir()
    (workspace_dir / "src" / "a.py").write_text("one\ntwo\nthree\n")
    assert run(ctx, "edit_patch", patch=PATCH_TWO_FILES) == \
        "Patched 2 files:\nmodified src/a.py (1 hunk)\ncreated src/new/b.py (1 hunk)"
    assert (workspace_dir / "src" / "a.py").read_text() == "one\nTWO\nthree\n"
    assert (workspace_dir / "src" / "new" / "b.py").read_text() == "print('b')\nprint('c')\n"


def test_patch_with_a_failing_second_hunk_changes_nothing(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("a\nb\nc\nd\ne\nf\n")
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n@@ -5,2 +5,2 @@\n e\n-not f\n+F\n"
    before = snapshot(workspace_dir)
    with pytest.raises(ToolError) as refused:
        run(ctx, "edit_patch", diff=diff)
    assert str(refused.value) == ("hunk 2 of a.txt does not match the file: its context and removed lines "
                                  "(starting 'e') were not found near line 5 or anywhere after the previous hunk; "
                                  "no file was changed")
    assert snapshot(workspace_dir) == before


def test_patch_failing_in_a_later_file_leaves_earlier_files_and_creates_nothing(
        ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "src").mkdir()
    (workspace_dir / "src" / "a.py").write_text("one\ntwo\nthree\n")
    (workspace_dir / "z.txt").write_text("z\n")
    diff = PATCH_TWO_FILES + "--- a/z.txt\n+++ b/z.txt\n@@ -1 +1 @@\n-q\n+Q\n"
    before = snapshot(workspace_dir)
    with pytest.raises(ToolError, match=r"hunk 1 of z.txt does not match the file"):
        run(ctx, "edit_patch", patch=diff)
    assert snapshot(workspace_dir) == before


def test_patch_bare_hunks_apply_to_path_and_a_patch_deletes_a_file(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "a.txt").write_text("x\ny\n")
    assert run(ctx, "edit_patch", path="a.txt", patch="@@ -1,2 +1,2 @@\n x\n-y\n+z\n") == \
        "Patched 1 file:\nmodified a.txt (1 hunk)"
    assert (workspace_dir / "a.txt").read_text() == "x\nz\n"
    assert run(ctx, "edit_patch", patch="--- a/a.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x\n-z\n") == \
        "Patched 1 file:\ndeleted a.txt (1 hunk)"
    assert snapshot(workspace_dir) == {}


def test_patch_refuses_to_delete_a_different_file_or_create_an_existing_one(
        ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "old.txt").write_text("bye\nand more\n")
    with pytest.raises(ToolError, match=r"the patch deletes old.txt but its hunks do not remove every line"):
        run(ctx, "edit_patch", patch="--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n")
    with pytest.raises(ToolError, match=r"the patch creates old.txt, which already exists; no file was changed"):
        run(ctx, "edit_patch", patch="--- /dev/null\n+++ b/old.txt\n@@ -0,0 +1 @@\n+new\n")
    assert snapshot(workspace_dir) == {"old.txt": b"bye\nand more\n"}


def test_patch_and_string_edit_together_or_no_diff_are_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"give either a patch or old_string/new_string edits, not both"):
        run(ctx, "edit_patch", patch="@@ -1 +1 @@\n-a\n+b\n", path="a.txt", old_string="a", new_string="b")
    with pytest.raises(ToolError, match=r"the patch has no file changes"):
        run(ctx, "edit_patch", patch="not a diff")


@pytest.mark.parametrize("target", ["../outside/secret.txt", "leak.txt", "out/secret.txt", "out/new.txt", ".env"])
def test_patch_refusals_touch_nothing(ctx: ToolContext, hostile: Path, outside: Path, target: str) -> None:
    (hostile / "ok.txt").write_text("ok\n")
    before, outside_before = snapshot(hostile), snapshot(outside)
    diff = ("--- a/ok.txt\n+++ b/ok.txt\n@@ -1 +1 @@\n-ok\n+changed\n"
            f"--- a/{target}\n+++ b/{target}\n@@ -1 +1 @@\n-outside secret\n+pwned\n"
            f"--- /dev/null\n+++ b/{target}.new\n@@ -0,0 +1 @@\n+pwned\n")
    with pytest.raises(ToolError, match=r"outside the workspace|deny list"):
        run(ctx, "edit_patch", patch=diff)
    assert (snapshot(hostile), snapshot(outside)) == (before, outside_before)


# workspace_list

@pytest.fixture
def tree(hostile: Path) -> Path:
    """A small project with the directories and files listing must skip."""
    files = {"README.md": "# demo\n", "src/app.py": "", "src/util/helpers.py": "", "src/util/data.json": "{}",
             "tests/test_app.py": "", ".github/ci.yml": "", ".git/config": "", "node_modules/x/index.js": "",
             "src/__pycache__/app.cpython-311.pyc": "", ".venv/bin/python": "", "build/out.js": "",
             "logs/app.log": "", "logs/keep.log": "", "certs/server.pem": "", ".gitignore": "build/\n*.log\n",
             "logs/.gitignore": "!keep.log\n"}
    for name, text in files.items():
        (hostile / name).parent.mkdir(parents=True, exist_ok=True)
        (hostile / name).write_text(text)
    (hostile / "readme-link.md").symlink_to("README.md")
    (hostile / "src-link").symlink_to(hostile / "src", target_is_directory=True)
    return hostile


def test_list_skips_ignored_denied_and_outside_paths(ctx: ToolContext, tree: Path) -> None:
    assert run(ctx, "workspace_list") == "\n".join([
        ".github/ci.yml", ".gitignore", "README.md", "logs/.gitignore", "logs/keep.log", "readme-link.md",
        "src/app.py", "src/util/data.json", "src/util/helpers.py", "tests/test_app.py"])


def test_list_with_patterns(ctx: ToolContext, tree: Path) -> None:
    assert run(ctx, "workspace_list", pattern="*.py") == "src/app.py\nsrc/util/helpers.py\ntests/test_app.py"
    assert run(ctx, "workspace_list", glob="src/**/*.py") == "src/app.py\nsrc/util/helpers.py"
    assert run(ctx, "workspace_list", pattern="*.{json,md}") == "README.md\nreadme-link.md\nsrc/util/data.json"
    assert run(ctx, "workspace_list", pattern="*.rs") == "No files match '*.rs' in ."


def test_list_a_sub_directory(ctx: ToolContext, tree: Path) -> None:
    assert run(ctx, "workspace_list", path="src", pattern="util/*") == "src/util/data.json\nsrc/util/helpers.py"
    assert run(ctx, "workspace_list", path="src/util") == "src/util/data.json\nsrc/util/helpers.py"
    assert run(ctx, "workspace_list", path="build") == "build/out.js"  # asked for by name, so shown


def test_list_is_capped(ctx: ToolContext, tree: Path) -> None:
    assert run(ctx, "workspace_list", limit=3) == \
        ".github/ci.yml\n.gitignore\nREADME.md\n… [7 more files not shown; narrow the pattern or raise limit]"


@pytest.mark.parametrize(("path", "message"), [
    ("out", "'out' is outside the workspace"), ("..", "'..' is outside the workspace"),
    ("README.md", "'README.md' is not a directory"), ("nope", "'nope' does not exist"),
])
def test_list_refusals(ctx: ToolContext, tree: Path, path: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        run(ctx, "workspace_list", path=path)


def test_tool_definitions() -> None:
    assert [tool.name for tool in WORKSPACE_TOOLS] == ["fs_read", "fs_write", "edit_patch", "workspace_list"]
    assert {tool.name: tool.duplicates for tool in WORKSPACE_TOOLS} == {
        "fs_read": ("Read",), "fs_write": ("Write",), "edit_patch": ("Edit", "MultiEdit"),
        "workspace_list": ("Glob", "LS")}
    for tool in WORKSPACE_TOOLS:
        definition = tool.definition()
        assert definition["input_schema"]["type"] == "object"
        assert "relative to the workspace root" in definition["description"]
        assert set(definition["input_schema"]["required"]) <= set(definition["input_schema"]["properties"])


def test_git_hooks_and_config_are_out_of_reach_in_a_real_repository(ctx: ToolContext, workspace_dir: Path) -> None:
    subprocess.run(["git", "init", "-q", str(workspace_dir)], check=True, capture_output=True)
    config_before = (workspace_dir / ".git" / "config").read_text()
    for path in (".git/hooks/pre-commit", ".git/config"):
        with pytest.raises(ToolError, match="deny list"):
            WORKSPACE_TOOLS[1].run(ctx, {"file_path": path, "content": "touch /tmp/pwned"})
    assert not (workspace_dir / ".git" / "hooks" / "pre-commit").exists()
    assert (workspace_dir / ".git" / "config").read_text() == config_before
