"""The workspace test tools: run the operator's test command, list past runs, summarise the latest.

The command is the operator's: ``WORKSPACE_TEST_COMMAND`` (split like a shell would, but never
run by one) plus ``WORKSPACE_TEST_ARGS``, or a named profile from ``WORKSPACE_TEST_PROFILES``.
The model only appends argv elements, which reach the runner as they are. Runs go through
:func:`app.tools.shell.run_in_workspace` (``WORKSPACE_TEST_SANDBOX``), and each is stored as a
:class:`~app.storage.models.TestRun` of the session, with the counts :mod:`app.tools.test_output` found.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from peewee import Expression

from app.storage.db import db
from app.storage.models import TestRun
from app.tools.base import Tool, ToolContext, ToolError, arg, int_arg, str_arg
from app.tools.paths import PathRefused
from app.tools.process import ProcessResult
from app.tools.shell import run_in_workspace
from app.tools.test_output import TestCounts, parse_test_output

OUTPUT_TAIL_CHARS = 20000  # of a run's output, kept in the row and shown to the model
RUN_OUTPUT_MAX_BYTES = 1024**2  # run_process keeps both ends, so the summary at the end survives
HISTORY_DEFAULT = 10
HISTORY_MAX = 50
COVERAGE_KINDS = ("lines", "statements", "functions", "branches")
COUNTS_UNKNOWN = "counts unknown"


def resolve_test_command(ctx: ToolContext, profile: str | None) -> list[str]:
    """The operator's argv for a run: the named profile's, or the configured command and its args.

    Raises :class:`ToolError` saying what to set when there is none.
    """
    config = ctx.config
    if profile is not None:
        profiles = _profiles(config.workspace_test_profiles)
        if profile not in profiles:
            names = ", ".join(sorted(profiles)) or "none are configured"
            raise ToolError(f"no test profile {profile!r} (WORKSPACE_TEST_PROFILES has: {names})")
        return profiles[profile]
    if not config.workspace_test_command.strip():
        raise ToolError("no test command is configured: the operator must set WORKSPACE_TEST_COMMAND "
                        "(e.g. 'pytest -q' or 'npm test')")
    try:
        command = shlex.split(config.workspace_test_command)
    except ValueError as exc:
        raise ToolError(f"WORKSPACE_TEST_COMMAND cannot be split into arguments: {exc}") from exc
    return [*command, *config.workspace_test_args]


def _profiles(raw: str) -> dict[str, list[str]]:
    if not raw.strip():
        return {}
    try:
        profiles = json.loads(raw)
    except ValueError as exc:
        raise ToolError("WORKSPACE_TEST_PROFILES is not valid JSON; the operator must fix it") from exc
    valid = isinstance(profiles, dict) and all(
        isinstance(argv, list) and argv and all(isinstance(word, str) for word in argv) for argv in profiles.values()
    )
    if not valid:
        raise ToolError("WORKSPACE_TEST_PROFILES must be a JSON object of non-empty argv lists of strings")
    return profiles


def _model_args(args: Mapping[str, Any]) -> list[str]:
    extra = arg(args, "args", default=[])
    if not isinstance(extra, list) or not all(isinstance(word, str) for word in extra):
        raise ToolError("argument 'args' must be a list of strings")
    if any("\0" in word for word in extra):
        raise ToolError("argument 'args' may not contain NUL bytes")
    return extra


def run_tests(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """Run the workspace's tests, store the run, and report its counts and output tail."""
    profile = str_arg(args, "profile")
    argv = [*resolve_test_command(ctx, profile), *_model_args(args)]
    limit_ms = ctx.config.workspace_test_timeout_ms
    timeout_ms = min(int_arg(args, "timeout_ms", default=limit_ms, minimum=1) or limit_ms, limit_ms)
    started = time.time()
    result = run_in_workspace(ctx, argv, timeout_s=timeout_ms / 1000, sandbox=ctx.config.workspace_test_sandbox,
                              max_output_bytes=RUN_OUTPUT_MAX_BYTES)
    counts = parse_test_output(result.output)
    # only coverage files this run wrote; an older one describes some earlier run
    coverage = [entry for entry in read_coverage(ctx) if entry["modified"] >= math.floor(started)]
    with db.connection_context():
        run = TestRun.create(
            session_id=ctx.session_id, profile=profile, command=json.dumps(argv), status=run_status(result, counts),
            exit_code=result.exit_code, **asdict(counts or TestCounts()), duration_ms=result.duration_ms,
            output=result.output[-OUTPUT_TAIL_CHARS:], coverage=json.dumps(coverage) if coverage else None,
        )
    note = "\n(the runner printed more than 1 MiB; the middle of its output was left out)" if result.truncated else ""
    return _describe_run(run, counts, timeout_ms) + note + "\n\n" + (run.output or "(no output)")


def run_status(result: ProcessResult, counts: TestCounts | None) -> str:
    """``passed``, ``failed``, ``error`` or ``timeout`` for a finished run."""
    if result.timed_out:
        return "timeout"
    if result.exit_code == 0:
        return "passed"
    if counts is not None and counts.failed:
        return "failed"
    return "error"


def _describe_run(run: TestRun, counts: TestCounts | None, timeout_ms: int) -> str:
    if run.status == "timeout":
        return f"Test run #{run.id}: timed out after {timeout_ms} ms (the runner was killed)"
    found = counts_text(run) if counts is not None else f"{COUNTS_UNKNOWN} (no test counts found in the output)"
    seconds = (run.duration_ms or 0) / 1000
    return f"Test run #{run.id}: {run.status} — {found} (exit code {run.exit_code}, {seconds:.1f} s)"


def counts_text(run: TestRun) -> str:
    """``"1 passed, 0 failed, 0 skipped, 0 errors"``, or ``"counts unknown"`` when the run's output had none.

    The row stores zeros for a run without counts; its stored output tail tells the two apart.
    """
    if not (run.passed or run.failed or run.skipped or run.errors) and parse_test_output(run.output or "") is None:
        return COUNTS_UNKNOWN
    return f"{run.passed} passed, {run.failed} failed, {run.skipped} skipped, {run.errors} errors"


def _own_runs(ctx: ToolContext) -> Expression:
    """This session's runs (the session-less scope when there is no session)."""
    return TestRun.session_id.is_null() if ctx.session_id is None else TestRun.session_id == ctx.session_id


def list_test_runs(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """This session's recent test runs, newest first, one line each."""
    limit = min(int_arg(args, "limit", default=HISTORY_DEFAULT, minimum=1) or HISTORY_DEFAULT, HISTORY_MAX)
    with db.connection_context():
        runs = list(TestRun.select().where(_own_runs(ctx)).order_by(TestRun.id.desc()).limit(limit))
    if not runs:
        return "No test runs yet in this session (workspace_test_run runs the tests)."
    return "\n".join(_history_line(run) for run in runs)


def _history_line(run: TestRun) -> str:
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
    profile = f" [{run.profile}]" if run.profile else ""
    command = shlex.join(json.loads(run.command))
    seconds = (run.duration_ms or 0) / 1000
    return f"#{run.id} {when} {run.status}: {counts_text(run)} ({seconds:.1f} s){profile} $ {command}"


def summarise_tests(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """The latest run's counts, and the coverage the workspace's coverage files report now."""
    with db.connection_context():
        latest = TestRun.select().where(_own_runs(ctx)).order_by(TestRun.id.desc()).first()
    lines = [_describe_latest(latest)]
    coverage = read_coverage(ctx)
    if not coverage:
        files = ", ".join(ctx.config.workspace_test_coverage_files) or "none configured"
        lines.append(f"Coverage: no coverage file found (looked for: {files}; WORKSPACE_TEST_COVERAGE_FILES).")
    lines.extend(_coverage_line(entry) for entry in coverage)
    return "\n".join(lines)


def _describe_latest(run: TestRun | None) -> str:
    if run is None:
        return "Latest run: none yet in this session (workspace_test_run runs the tests)."
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"Latest run: #{run.id} at {when} UTC, {run.status} — {counts_text(run)}"


def _coverage_line(entry: Mapping[str, Any]) -> str:
    parts = [f"{kind} {entry[kind]:.2f}%" for kind in COVERAGE_KINDS if entry.get(kind) is not None]
    return f"Coverage ({entry['file']}): " + (", ".join(parts) or "no totals in the file")


def read_coverage(ctx: ToolContext) -> list[dict[str, Any]]:
    """Totals from each configured coverage file that exists: istanbul summaries and coverage.py JSON."""
    found = []
    for name in ctx.config.workspace_test_coverage_files:
        try:
            path = ctx.workspace.resolve(name)
        except PathRefused:
            continue
        totals = _coverage_totals(path)
        if totals is not None:
            found.append({"file": name, "modified": path.stat().st_mtime, **totals})
    return found


def _coverage_totals(path: Path) -> dict[str, float | None] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("total"), dict):  # istanbul's coverage-summary.json
        return {kind: _number(data["total"].get(kind, {}).get("pct")) for kind in COVERAGE_KINDS}
    totals = data.get("totals")
    if isinstance(totals, dict):  # coverage.py's `coverage json`
        return {"lines": _ratio(totals.get("covered_lines"), totals.get("num_statements")),
                "branches": _ratio(totals.get("covered_branches"), totals.get("num_branches"))}
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ratio(part: Any, whole: Any) -> float | None:
    part, whole = _number(part), _number(whole)
    return round(100 * part / whole, 2) if part is not None and whole else None


_SCHEMA_LIMIT = {"type": "integer", "minimum": 1, "maximum": HISTORY_MAX, "default": HISTORY_DEFAULT}

TEST_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="workspace_test_run",
        description=("Run the workspace's configured test command (or a named profile), with optional extra "
                     "arguments, and report passed/failed/skipped/error counts and the end of the output."),
        input_schema={
            "type": "object",
            "properties": {
                "profile": {"type": "string", "description": "A test profile the operator configured."},
                "args": {"type": "array", "items": {"type": "string"},
                         "description": "Extra arguments for the test runner, e.g. a test file or -k filter."},
                "timeout_ms": {"type": "integer", "minimum": 1,
                               "description": "Milliseconds before the run is killed (capped by the operator)."},
            },
            "additionalProperties": False,
        },
        run=run_tests,
    ),
    Tool(
        name="workspace_test_history",
        description="List this session's recent test runs, newest first, with their counts.",
        input_schema={"type": "object", "properties": {"limit": _SCHEMA_LIMIT}, "additionalProperties": False},
        run=list_test_runs,
    ),
    Tool(
        name="workspace_test_summary",
        description="Summarise the latest test run and the coverage reported by the workspace's coverage files.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        run=summarise_tests,
    ),
)
