"""Driving the real Claude Code CLI (2.1.331, pinned in package.json) for the CLI e2e tests.

:func:`run_claude` runs it in print mode with ``stream-json`` output and a debug log, which is where
2.1.331 reports a silent retry without streaming (its exit code and result stay successful when
that happens): :func:`fallback_lines` finds those reports. :class:`WriteFileModel` is the model
the fake upstream plays for :data:`PROMPT` (each API format fills in its wire shapes), and
:func:`assert_wrote_file` checks such a run end to end: the file on disk, the ``stream-json``
events and a debug log showing streams and no fallback.
"""

from __future__ import annotations

import json
import os
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

CLAUDE = Path(__file__).parent / "node_modules" / ".bin" / "claude"
CLAUDE_VERSION = "2.1.331"
PROMPT = "Create a file named hello.txt containing exactly: hello from lynkr"
CONTENT = "hello from lynkr"
TIMEOUT_S = 180
# What 2.1.331 writes to its debug log when it abandons a stream and retries without streaming
# (read from the binary, and checked against a forced fallback in test_claude_cli.py).
FALLBACK_MARKERS = (
    "falling back to non-streaming mode",
    "triggering non-streaming fallback",
    "Non-streaming fallback",
    "non-streaming retry",
)


RequestT = TypeVar("RequestT")
BehaviourT = TypeVar("BehaviourT")


class WriteFileModel(ABC, Generic[RequestT, BehaviourT]):
    """Answers like a model asked to create ``path``: a Write call, then "Done." after its result.

    A fake upstream's ``responder``; subclasses read and write their API's format.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tool_call_sent = False

    def __call__(self, request: RequestT) -> BehaviourT | None:
        if self.returns_tool_result(request):
            return self.answer(request, "Done.")
        if not self.tool_call_sent and self.offers_write(request) and self.asks_for_file(request):
            self.tool_call_sent = True
            return self.write_call(request, {"file_path": str(self.path), "content": CONTENT})
        return None  # side requests (titles, summaries, ...): the fake's short default answer

    @abstractmethod
    def returns_tool_result(self, request: RequestT) -> bool:
        """Whether the request's last message carries the result of our Write call."""

    @abstractmethod
    def offers_write(self, request: RequestT) -> bool:
        """Whether the request offers the ``Write`` tool."""

    @abstractmethod
    def asks_for_file(self, request: RequestT) -> bool:
        """Whether a user turn of the request carries :data:`PROMPT`."""

    @abstractmethod
    def answer(self, request: RequestT, text: str) -> BehaviourT:
        """A plain text answer, streamed or not as the request asks."""

    @abstractmethod
    def write_call(self, request: RequestT, arguments: dict[str, str]) -> BehaviourT:
        """The Write call with ``arguments``, streamed or not as the request asks."""


def claude_binary() -> Path:
    """The pinned CLI; fails the test when ``npm ci`` has not been run in tests/e2e."""
    if not os.access(CLAUDE, os.X_OK):
        pytest.fail(f"Claude Code CLI not found at {CLAUDE}: run `npm ci` in tests/e2e "
                    f"(installs @anthropic-ai/claude-code@{CLAUDE_VERSION} from package-lock.json).")
    return CLAUDE


def node_path() -> str:
    """PATH with ``node_modules/.bin`` first: the Node.js the CLI declares (>= 22) comes from npm there."""
    return f"{CLAUDE.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


def run_claude(base_url: str, api_key: str, workspace: Path, tmp: Path, prompt: str,
               *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``claude -p`` with a fresh HOME and only the variables it needs; returns the result and debug log."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    debug_log = tmp / "debug.log"
    env = {
        "HOME": str(home), "PATH": node_path(),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1", "IS_SANDBOX": "1",
    }
    argv = [str(claude_binary()), "-p", prompt, "--output-format", "stream-json", "--verbose",
            "--debug-file", str(debug_log), *extra]
    result = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                            stdin=subprocess.DEVNULL, check=False)
    return result, debug_log


def new_workspace(tmp: Path) -> tuple[Path, Path]:
    """A fresh working directory for the CLI under ``tmp``, and the file :data:`PROMPT` asks for in it."""
    workspace = tmp / "workspace"
    workspace.mkdir()
    return workspace, workspace / "hello.txt"


def run_write_prompt(base_url: str, api_key: str, workspace: Path,
                     tmp: Path) -> tuple[subprocess.CompletedProcess[str], Path, str]:
    """Run :data:`PROMPT` with edits accepted; returns the result, the debug log and a failure report."""
    result, debug_log = run_claude(base_url, api_key, workspace, tmp, PROMPT, "--permission-mode", "acceptEdits")
    report = f"exit {result.returncode}\nstdout tail:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    return result, debug_log, report


def stream_json(stdout: str) -> list[dict[str, Any]]:
    """The ``stream-json`` events the CLI printed, one per non-empty line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def fallback_lines(debug_log: Path) -> list[str]:
    """The debug log's lines that report a non-streaming fallback (:data:`FALLBACK_MARKERS`)."""
    return [line for line in debug_log.read_text(errors="replace").splitlines()
            if any(marker.lower() in line.lower() for marker in FALLBACK_MARKERS)]


def assert_wrote_file(result: subprocess.CompletedProcess[str], debug_log: Path, report: str, target: Path) -> None:
    """The CLI exited 0 having written :data:`CONTENT` to ``target``, its events run from the pinned
    version's ``system`` event to a successful "Done." result, and the debug log shows streams and
    no silent fallback to non-streaming."""
    assert result.returncode == 0, report
    assert target.read_text() == CONTENT
    events = stream_json(result.stdout)
    assert events[0]["type"] == "system"
    assert events[0]["claude_code_version"] == CLAUDE_VERSION
    final = events[-1]
    assert final["type"] == "result", report
    assert (final["is_error"], final["subtype"], final["result"]) == (False, "success", "Done.")

    debug = debug_log.read_text(errors="replace")
    assert "Stream started - received first chunk" in debug, "the debug log does not show the streams"
    assert fallback_lines(debug_log) == []
