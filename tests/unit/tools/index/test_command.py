"""``lynkr index``: a progress bar on a terminal, plain lines elsewhere, and a closing line of counts."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from app.cli import main
from app.config import Config
from app.tools.index.command import ProgressReport, run_index


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_line_is_redrawn() -> None:
    screen = Terminal()
    report = ProgressReport(screen)
    for done in range(1, 5):
        report.update(done, 4)
    report.finish()
    assert screen.getvalue() == ("\r[#######.......................] 1/4 files"
                                 "\r[###############...............] 2/4 files"
                                 "\r[######################........] 3/4 files"
                                 "\r[##############################] 4/4 files\n")


def test_elsewhere_a_plain_line_per_tenth() -> None:
    log = io.StringIO()
    report = ProgressReport(log)
    for done in range(1, 21):
        report.update(done, 20)
    report.finish()
    assert log.getvalue().splitlines() == [f"indexing: {done}/20 files" for done in (1, 2, 4, 6, 8, 10, 12, 14, 16,
                                                                                       18, 20)]


def test_run_index_rebuilds_the_workspace_and_ends_with_counts(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "main.py").write_text("def main():\n    pass\n")
    out, err = io.StringIO(), io.StringIO()
    config = Config(session_db_path=str(tmp_path / "lynkr.db"), index_write_claude_md=False)
    assert run_index(config, str(root), out, err) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "CLAUDE.md not written (INDEX_WRITE_CLAUDE_MD=false)"
    assert re.fullmatch(r"Indexed 1 files \(1 parsed, 0 unchanged, 0 removed, 0 skipped, 0 failed\): "
                        r"1 symbols in \d+\.\d\d s", lines[1])
    assert err.getvalue() == "indexing: 1/1 files\n"


def test_run_index_needs_a_workspace(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_index(Config(session_db_path=str(tmp_path / "l.db")), None, out, err) == 2
    assert err.getvalue() == "lynkr: no workspace: set WORKSPACE_ROOT or pass --workspace DIR\n"
    assert run_index(Config(session_db_path=str(tmp_path / "l.db")), str(tmp_path / "nope"), out, err) == 2
    assert err.getvalue().endswith(f"lynkr: {tmp_path / 'nope'} is not a directory\n")


def test_lynkr_index_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "cart.rb").write_text("class Cart\n  def total\n  end\nend\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSION_DB_PATH", str(tmp_path / "lynkr.db"))
    assert main(["index", "--workspace", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "CLAUDE.md: the project summary section was written"
    assert out[1].startswith("Indexed 1 files (1 parsed, 0 unchanged, 0 removed, 0 skipped, 0 failed): 2 symbols in ")
    assert (root / "CLAUDE.md").read_text().count("- ruby: 1 file, 4 lines") == 1
