"""The workspace test tools run a real pytest project, store each run, and summarise runs and coverage."""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.storage.models import TestRun
from app.tools.base import ToolContext, ToolError
from app.tools.tests import TEST_TOOLS

TOOLS = {tool.name: tool for tool in TEST_TOOLS}
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
SAMPLE_TESTS = """\
def test_ok():
    assert 1 + 1 == 2


def test_bad():
    assert 1 + 1 == 3
"""
ISTANBUL = {"total": {"lines": {"total": 10, "covered": 8, "skipped": 0, "pct": 80},
                      "statements": {"total": 12, "covered": 9, "skipped": 0, "pct": 75},
                      "functions": {"total": 4, "covered": 2, "skipped": 0, "pct": 50},
                      "branches": {"total": 3, "covered": 2, "skipped": 0, "pct": 66.66}}}
COVERAGE_PY = {"meta": {"format": 3}, "totals": {"covered_lines": 45, "num_statements": 60, "percent_covered": 75.0,
                                                 "covered_branches": 0, "num_branches": 0}}


def call(ctx: ToolContext, name: str, **args: Any) -> str:
    result = TOOLS[name].run(ctx, args)
    assert isinstance(result, str)
    return result


@pytest.fixture
def project(workspace_dir: Path) -> Path:
    """A tiny pytest project: one passing test and one failing test."""
    (workspace_dir / "test_sample.py").write_text(SAMPLE_TESTS)
    return workspace_dir


@pytest.fixture
def runner_ctx(make_ctx: Any, project: Path) -> ToolContext:
    return make_ctx(workspace_test_command=shlex.join(PYTEST))


def test_the_tools_are_offered_with_strict_schemas() -> None:
    assert list(TOOLS) == ["workspace_test_run", "workspace_test_history", "workspace_test_summary"]
    assert all(tool.input_schema["additionalProperties"] is False for tool in TEST_TOOLS)
    assert TOOLS["workspace_test_run"].input_schema["properties"]["args"] == {
        "type": "array", "items": {"type": "string"},
        "description": "Extra arguments for the test runner, e.g. a test file or -k filter."}


@pytest.mark.parametrize("sandbox", ["always", "never"])
def test_a_run_is_stored_with_its_counts(make_ctx: Any, project: Path, database: Any, sandbox: str) -> None:
    ctx = make_ctx(workspace_test_command=shlex.join(PYTEST), workspace_test_sandbox=sandbox)
    result = call(ctx, "workspace_test_run")
    run = TestRun.get()
    assert result.startswith(f"Test run #{run.id}: failed — 1 passed, 1 failed, 0 skipped, 0 errors (exit code 1, ")
    assert "1 failed, 1 passed in" in result
    assert (run.session_id, run.profile, json.loads(run.command), run.status, run.exit_code) == (
        "sess-1", None, PYTEST, "failed", 1)
    assert (run.passed, run.failed, run.skipped, run.errors) == (1, 1, 0, 0)
    assert "FAILED test_sample.py::test_bad" in run.output
    assert run.duration_ms > 0
    assert run.coverage is None


def test_model_args_are_literal_argv_elements(runner_ctx: ToolContext, project: Path, database: Any) -> None:
    call(runner_ctx, "workspace_test_run", args=["; touch x", "$(touch y)", "`touch z`"])
    run = TestRun.get()
    assert json.loads(run.command) == [*PYTEST, "; touch x", "$(touch y)", "`touch z`"]
    assert "file or directory not found: ; touch x" in run.output
    assert (run.status, run.exit_code) == ("error", 4)
    assert sorted(path.name for path in project.iterdir()) == ["test_sample.py"]


def test_model_args_narrow_the_run(runner_ctx: ToolContext, database: Any) -> None:
    result = call(runner_ctx, "workspace_test_run", args=["-k", "ok"])
    assert "passed — 1 passed, 0 failed, 0 skipped, 0 errors (exit code 0" in result
    assert TestRun.get().status == "passed"


def test_configured_args_follow_the_command(make_ctx: Any, project: Path, database: Any) -> None:
    ctx = make_ctx(workspace_test_command=shlex.join(PYTEST), workspace_test_args=("-k", "bad"))
    call(ctx, "workspace_test_run")
    run = TestRun.get()
    assert (json.loads(run.command)[-2:], run.passed, run.failed) == (["-k", "bad"], 0, 1)


def test_without_a_test_command_the_tool_says_what_to_set(ctx: ToolContext, database: Any) -> None:
    with pytest.raises(ToolError, match="WORKSPACE_TEST_COMMAND"):
        call(ctx, "workspace_test_run")
    assert TestRun.select().count() == 0


@pytest.mark.parametrize("bad_args", ["-k ok", ["-k", 1]])
def test_args_must_be_a_list_of_strings(runner_ctx: ToolContext, database: Any, bad_args: Any) -> None:
    with pytest.raises(ToolError, match="'args' must be a list of strings"):
        call(runner_ctx, "workspace_test_run", args=bad_args)


def test_profiles_name_whole_commands(make_ctx: Any, project: Path, database: Any) -> None:
    profiles = {"ok": [*PYTEST, "-k", "ok"], "all": PYTEST}
    ctx = make_ctx(workspace_test_profiles=json.dumps(profiles))
    assert "passed — 1 passed, 0 failed" in call(ctx, "workspace_test_run", profile="ok")
    assert TestRun.get().profile == "ok"
    with pytest.raises(ToolError, match=r"no test profile 'slow' .*has: all, ok"):
        call(ctx, "workspace_test_run", profile="slow")


@pytest.mark.parametrize("raw", ["{not json", '{"unit": "pytest -q"}', '["pytest"]', '{"unit": []}'])
def test_malformed_profiles_are_reported(make_ctx: Any, database: Any, raw: str) -> None:
    with pytest.raises(ToolError, match="WORKSPACE_TEST_PROFILES"):
        call(make_ctx(workspace_test_profiles=raw), "workspace_test_run", profile="unit")


def test_a_run_past_its_timeout_is_killed_and_stored_as_timeout(make_ctx: Any, database: Any) -> None:
    command = shlex.join([sys.executable, "-c", "import time; time.sleep(30)"])
    ctx = make_ctx(workspace_test_command=command, workspace_test_timeout_ms=300)
    result = call(ctx, "workspace_test_run", timeout_ms=60_000)
    assert result.startswith("Test run #1: timed out after 300 ms")
    assert (TestRun.get().status, TestRun.get().exit_code) == ("timeout", None)


def test_a_run_that_prints_no_counts_is_an_error(make_ctx: Any, database: Any) -> None:
    ctx = make_ctx(workspace_test_command=shlex.join([sys.executable, "-c", "raise SystemExit('no runner')"]))
    assert "error — counts unknown (no test counts found in the output) (exit code 1" in call(ctx, "workspace_test_run")
    assert TestRun.get().status == "error"


def test_history_and_summary_say_counts_unknown_for_a_run_without_counts(make_ctx: Any, database: Any) -> None:
    ctx = make_ctx(workspace_test_command=shlex.join([sys.executable, "-c", "print('built, nothing counted')"]))
    call(ctx, "workspace_test_run")
    (line,) = call(ctx, "workspace_test_history").splitlines()
    assert line.startswith("#1 ")
    assert " passed: counts unknown (" in line
    assert ": 0 passed" not in line  # the counted form (": 0 passed, 0 failed, …"); the time may end in 0
    assert "0 failed" not in line
    latest = call(ctx, "workspace_test_summary").splitlines()[0]
    assert latest.endswith("passed — counts unknown")


def test_a_run_that_counted_no_tests_still_says_zero(make_ctx: Any, workspace_dir: Path, database: Any) -> None:
    (workspace_dir / "test_empty.py").write_text("")
    ctx = make_ctx(workspace_test_command=shlex.join([*PYTEST, "test_empty.py"]))
    call(ctx, "workspace_test_run")
    assert ": 0 passed, 0 failed, 0 skipped, 0 errors (" in call(ctx, "workspace_test_history")


def test_always_sandboxed_runs_refuse_without_a_sandbox(make_ctx: Any, database: Any) -> None:
    ctx = make_ctx(workspace_test_command="pytest", workspace_test_sandbox="always", sandbox_enabled=False)
    with pytest.raises(ToolError, match="no sandbox"):
        call(ctx, "workspace_test_run")


def test_history_lists_this_sessions_runs_newest_first(runner_ctx: ToolContext, database: Any) -> None:
    assert call(runner_ctx, "workspace_test_history").startswith("No test runs yet in this session")
    call(runner_ctx, "workspace_test_run")
    call(runner_ctx, "workspace_test_run", args=["-k", "ok"])
    call(replace(runner_ctx, session_id="sess-2"), "workspace_test_run")
    lines = call(runner_ctx, "workspace_test_history").splitlines()
    assert [line.split(" ")[0] for line in lines] == ["#2", "#1"]
    assert "passed: 1 passed, 0 failed, 0 skipped, 0 errors" in lines[0]
    assert lines[0].endswith("$ " + shlex.join([*PYTEST, "-k", "ok"]))
    assert "failed: 1 passed, 1 failed" in lines[1]
    assert call(runner_ctx, "workspace_test_history", limit=1).splitlines() == lines[:1]


def test_summary_without_runs_or_coverage(ctx: ToolContext, database: Any) -> None:
    assert call(ctx, "workspace_test_summary") == (
        "Latest run: none yet in this session (workspace_test_run runs the tests).\n"
        "Coverage: no coverage file found (looked for: coverage/coverage-summary.json; WORKSPACE_TEST_COVERAGE_FILES).")


def test_summary_reports_the_latest_run_and_istanbul_coverage(runner_ctx: ToolContext, project: Path,
                                                              database: Any) -> None:
    call(runner_ctx, "workspace_test_run")
    (project / "coverage").mkdir()
    (project / "coverage" / "coverage-summary.json").write_text(json.dumps(ISTANBUL))
    lines = call(runner_ctx, "workspace_test_summary").splitlines()
    assert lines[0].startswith("Latest run: #1 at ")
    assert lines[0].endswith("UTC, failed — 1 passed, 1 failed, 0 skipped, 0 errors")
    assert lines[1:] == ["Coverage (coverage/coverage-summary.json): lines 80.00%, statements 75.00%, "
                         "functions 50.00%, branches 66.66%"]


def test_summary_reads_coverage_py_json(make_ctx: Any, workspace_dir: Path, database: Any) -> None:
    (workspace_dir / "coverage.json").write_text(json.dumps(COVERAGE_PY))
    ctx = make_ctx(workspace_test_coverage_files=("coverage/coverage-summary.json", "coverage.json"))
    assert call(ctx, "workspace_test_summary").splitlines()[1:] == ["Coverage (coverage.json): lines 75.00%"]


def test_a_run_keeps_only_coverage_it_wrote(make_ctx: Any, workspace_dir: Path, database: Any) -> None:
    stale = workspace_dir / "stale.json"
    stale.write_text(json.dumps(COVERAGE_PY))
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    writer = ("import json, pathlib; pathlib.Path('coverage').mkdir(); "
              f"pathlib.Path('coverage/coverage-summary.json').write_text(json.dumps({ISTANBUL!r})); "
              "print('3 passed in 0.01s')")
    ctx = make_ctx(workspace_test_command=shlex.join([sys.executable, "-c", writer]),
                   workspace_test_coverage_files=("coverage/coverage-summary.json", "stale.json"))
    call(ctx, "workspace_test_run")
    run = TestRun.get()
    assert (run.status, run.passed) == ("passed", 3)
    coverage = json.loads(run.coverage)
    assert [(entry["file"], entry["lines"], entry["branches"]) for entry in coverage] == [
        ("coverage/coverage-summary.json", 80, 66.66)]
