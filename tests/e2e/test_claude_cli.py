"""The real Claude Code CLI (2.1.331, pinned in package.json) through the gateway.

The fake upstream behind the gateway plays the model: it answers the user's prompt with a
``Write`` tool call, and the tool result with "Done.". The CLI runs in print mode with
``stream-json`` output and a debug log, which is where 2.1.331 reports a silent retry without
streaming (its exit code and result stay successful when that happens).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Gateway
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import Behaviour, FakeAnthropicUpstream, JsonReply, RecordedRequest, StreamReply

pytestmark = [pytest.mark.cli, pytest.mark.slow]

CLAUDE = Path(__file__).parent / "node_modules" / ".bin" / "claude"
CLAUDE_VERSION = "2.1.331"
GATEWAY_KEY = "sk-e2e-cli-key-0000000001"
PROMPT = "Create a file named hello.txt containing exactly: hello from lynkr"
CONTENT = "hello from lynkr"
TIMEOUT_S = 180
# What 2.1.331 writes to its debug log when it abandons a stream and retries without streaming
# (read from the binary, and checked against a forced fallback below).
FALLBACK_MARKERS = (
    "falling back to non-streaming mode",
    "triggering non-streaming fallback",
    "Non-streaming fallback",
    "non-streaming retry",
)


def claude_binary() -> Path:
    """The pinned CLI; fails the test when ``npm ci`` has not been run in tests/e2e."""
    if not os.access(CLAUDE, os.X_OK):
        pytest.fail(f"Claude Code CLI not found at {CLAUDE}: run `npm ci` in tests/e2e "
                    f"(installs @anthropic-ai/claude-code@{CLAUDE_VERSION} from package-lock.json).")
    return CLAUDE


class WriteFileModel:
    """Answers like a model asked to create ``path``: a Write call, then "Done." after its result."""

    tool_id = "toolu_e2e_write_0001"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tool_call_sent = False

    def __call__(self, request: RecordedRequest) -> Behaviour | None:
        body = request.body if isinstance(request.body, dict) else {}
        messages = body.get("messages") or []
        if messages and self.tool_id in _tool_result_ids(messages[-1]):
            return _answer(request, "Done.")
        tools = {tool.get("name") for tool in body.get("tools") or []}
        if not self.tool_call_sent and "Write" in tools and _user_text_contains(messages, PROMPT):
            self.tool_call_sent = True
            tool_input = {"file_path": str(self.path), "content": CONTENT}
            if request.stream:
                return StreamReply(ev.tool_use_events("Write", tool_input, tool_id=self.tool_id,
                                                      preface="Creating hello.txt."))
            return JsonReply(ev.message([ev.tool_use_block("Write", tool_input, self.tool_id)],
                                        stop_reason="tool_use"))
        return None  # side requests (titles, summaries, ...): the fake's short default answer


def _answer(request: RecordedRequest, text: str) -> Behaviour:
    if request.stream:
        return StreamReply(ev.text_events([text]))
    return JsonReply(ev.message([ev.text_block(text)]))


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def _tool_result_ids(message: dict[str, Any]) -> set[str]:
    return {b.get("tool_use_id") for b in _blocks(message) if b.get("type") == "tool_result"}


def _user_text_contains(messages: list[dict[str, Any]], text: str) -> bool:
    return any(text in b.get("text", "") for m in messages if m.get("role") == "user" for b in _blocks(m)
               if b.get("type") == "text")


def run_claude(base_url: str, api_key: str, workspace: Path, tmp: Path, prompt: str,
               *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``claude -p`` with a fresh HOME and only the variables it needs; returns the result and debug log."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    debug_log = tmp / "debug.log"
    env = {
        "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1", "IS_SANDBOX": "1",
    }
    argv = [str(claude_binary()), "-p", prompt, "--output-format", "stream-json", "--verbose",
            "--debug-file", str(debug_log), *extra]
    result = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                            stdin=subprocess.DEVNULL, check=False)
    return result, debug_log


def _stream_json(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _fallback_lines(debug_log: Path) -> list[str]:
    return [line for line in debug_log.read_text(errors="replace").splitlines()
            if any(marker.lower() in line.lower() for marker in FALLBACK_MARKERS)]


def test_claude_code_writes_a_file_through_the_gateway(make_gateway: Callable[..., Gateway],
                                                       mocked_upstream: FakeAnthropicUpstream,
                                                       tmp_path: Path) -> None:
    """Prompt → Write tool call → file on disk → "Done."; streamed all the way, no silent fallback."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    target = workspace / "hello.txt"
    mocked_upstream.responder = model = WriteFileModel(target)
    gateway = make_gateway(LYNKR_API_KEYS=GATEWAY_KEY)

    result, debug_log = run_claude(gateway.url, GATEWAY_KEY, workspace, tmp_path, PROMPT,
                                   "--permission-mode", "acceptEdits")

    report = f"exit {result.returncode}\nstdout tail:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, report
    assert target.read_text() == CONTENT
    events = _stream_json(result.stdout)
    assert events[0]["type"] == "system"
    assert events[0]["claude_code_version"] == CLAUDE_VERSION
    final = events[-1]
    assert final["type"] == "result", report
    assert (final["is_error"], final["subtype"], final["result"]) == (False, "success", "Done.")

    debug = debug_log.read_text(errors="replace")
    assert "Stream started - received first chunk" in debug, "the debug log does not show the streams"
    assert _fallback_lines(debug_log) == []

    upstream = mocked_upstream.message_requests()
    assert [r.rejected for r in upstream if r.rejected] == [], "the gateway sent what Databricks rejects"
    assert model.tool_call_sent
    turns = [r for r in upstream if _user_text_contains(r.body.get("messages") or [], PROMPT)]
    assert len(turns) >= 2, [r.body.get("messages", [])[-1:] for r in upstream]
    assert all(r.stream for r in turns), "a turn of the conversation was sent without streaming"
    assert WriteFileModel.tool_id in _tool_result_ids(turns[-1].body["messages"][-1])


def test_fallback_markers_match_what_the_cli_logs(tmp_path: Path) -> None:
    """Control for the check above: a stream with no events (CLI straight at the fake) makes 2.1.331 log a
    non-streaming fallback in the wording ``FALLBACK_MARKERS`` looks for."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with FakeAnthropicUpstream() as upstream:
        upstream.script(StreamReply(events=[]))
        result, debug_log = run_claude(upstream.url, "sk-e2e-direct", workspace, tmp_path, "Say hi.")
        requests_seen = [r.stream for r in upstream.message_requests()]

    assert result.returncode == 0, result.stderr[-3000:]
    assert requests_seen[:2] == [True, False], "the CLI did not retry without streaming"
    lines = _fallback_lines(debug_log)
    assert any("triggering non-streaming fallback" in line for line in lines), lines
    assert any("falling back to non-streaming mode" in line for line in lines), lines
