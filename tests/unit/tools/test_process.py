"""Child processes for tools: argv only, a clean environment, a timeout that kills the group, capped output."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from app.config import Config
from app.tools.process import ProcessResult, child_env, run_process

PY = sys.executable


def run(code: str, tmp_path: Path, *, timeout_s: float = 10.0, cap: int = 10_000) -> ProcessResult:
    return run_process([PY, "-c", code], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, timeout_s=timeout_s,
                       max_output_bytes=cap)


def test_the_environment_holds_only_passed_through_names_and_no_secret() -> None:
    config = Config(api_keys=("sk-secret",), sandbox_passthrough_env=("PATH", "HOME", "TOKEN"))
    source = {"PATH": "/bin", "HOME": "/home/u", "TOKEN": "sk-secret", "AWS_SECRET_ACCESS_KEY": "x"}
    assert child_env(config, {"EXTRA": "1", "LEAK": "sk-secret"}, source=source) == {
        "PATH": "/bin", "HOME": "/home/u", "EXTRA": "1"}


def test_output_exit_code_and_working_directory(tmp_path: Path) -> None:
    result = run("import os, sys; print(os.getcwd()); print('err', file=sys.stderr); sys.exit(3)", tmp_path)
    assert (result.exit_code, result.timed_out, result.truncated) == (3, False, False)
    assert sorted(result.output.splitlines()) == sorted([str(tmp_path), "err"])  # two pipes, one stream
    assert result.duration_ms > 0


def test_the_child_sees_only_the_given_environment(tmp_path: Path) -> None:
    result = run_process([PY, "-c", "import os; print(sorted(os.environ))"], cwd=tmp_path,
                         env={"PATH": os.environ["PATH"], "ONLY": "1"}, timeout_s=10, max_output_bytes=1000)
    assert result.output.strip() in ("['ONLY', 'PATH']", "['LC_CTYPE', 'ONLY', 'PATH']")


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(marker)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    result = run(code, tmp_path, timeout_s=1.0)
    assert (result.exit_code, result.timed_out) == (None, True)
    assert result.output == "started\n"
    assert dies_soon(int(marker.read_text()))


def dies_soon(pid: int, within_s: float = 5.0) -> bool:
    """Whether ``pid`` is gone or a zombie within ``within_s`` (SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def test_output_keeps_its_head_and_tail(tmp_path: Path) -> None:
    result = run("print('A' * 50 + 'B' * 100 + 'C' * 50, end='')", tmp_path, cap=100)
    assert result.truncated is True
    assert result.output == "A" * 50 + "\n… [100 bytes of output left out] …\n" + "C" * 50


def test_a_missing_program_is_a_result_not_an_exception(tmp_path: Path) -> None:
    result = run_process(["/nonexistent/tool"], cwd=tmp_path, env={}, timeout_s=1, max_output_bytes=100)
    assert (result.exit_code, result.timed_out, result.truncated) == (None, False, False)
    assert result.output == "could not start /nonexistent/tool: No such file or directory"
