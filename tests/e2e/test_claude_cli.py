"""The real Claude Code CLI (2.1.331, pinned in package.json) through the gateway.

The fake upstream behind the gateway plays the model: it answers the user's prompt with a
``Write`` tool call, and the tool result with "Done.". The CLI runs in print mode with
``stream-json`` output and a debug log, which is where 2.1.331 reports a silent retry without
streaming (its exit code and result stay successful when that happens).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import cli_helpers
from tests.e2e.cli_helpers import PROMPT, assert_wrote_file, fallback_lines, new_workspace, run_claude, run_write_prompt
from tests.e2e.helpers import Gateway
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import Behaviour, FakeAnthropicUpstream, JsonReply, RecordedRequest, StreamReply

pytestmark = [pytest.mark.cli, pytest.mark.slow]

GATEWAY_KEY = "sk-e2e-cli-key-0000000001"


class WriteFileModel(cli_helpers.WriteFileModel[RecordedRequest, Behaviour]):
    """The model of :class:`cli_helpers.WriteFileModel` speaking Anthropic Messages."""

    tool_id = "toolu_e2e_write_0001"

    def returns_tool_result(self, request: RecordedRequest) -> bool:
        messages = _messages(request)
        return bool(messages) and self.tool_id in _tool_result_ids(messages[-1])

    def offers_write(self, request: RecordedRequest) -> bool:
        body = request.body if isinstance(request.body, dict) else {}
        return "Write" in {tool.get("name") for tool in body.get("tools") or []}

    def asks_for_file(self, request: RecordedRequest) -> bool:
        return _user_text_contains(_messages(request), PROMPT)

    def answer(self, request: RecordedRequest, text: str) -> Behaviour:
        if request.stream:
            return StreamReply(ev.text_events([text]))
        return JsonReply(ev.message([ev.text_block(text)]))

    def write_call(self, request: RecordedRequest, arguments: dict[str, str]) -> Behaviour:
        if request.stream:
            return StreamReply(ev.tool_use_events("Write", arguments, tool_id=self.tool_id,
                                                  preface="Creating hello.txt."))
        return JsonReply(ev.message([ev.tool_use_block("Write", arguments, self.tool_id)], stop_reason="tool_use"))


def _messages(request: RecordedRequest) -> list[dict[str, Any]]:
    body = request.body if isinstance(request.body, dict) else {}
    return body.get("messages") or []


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


def test_claude_code_writes_a_file_through_the_gateway(make_gateway: Callable[..., Gateway],
                                                       mocked_upstream: FakeAnthropicUpstream,
                                                       tmp_path: Path) -> None:
    """Prompt → Write tool call → file on disk → "Done."; streamed all the way, no silent fallback."""
    workspace, target = new_workspace(tmp_path)
    mocked_upstream.responder = model = WriteFileModel(target)
    gateway = make_gateway(LYNKR_API_KEYS=GATEWAY_KEY)

    result, debug_log, report = run_write_prompt(gateway.url, GATEWAY_KEY, workspace, tmp_path)

    assert_wrote_file(result, debug_log, report, target)

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
    workspace, _ = new_workspace(tmp_path)
    with FakeAnthropicUpstream() as upstream:
        upstream.script(StreamReply(events=[]))
        result, debug_log = run_claude(upstream.url, "sk-e2e-direct", workspace, tmp_path, "Say hi.")
        requests_seen = [r.stream for r in upstream.message_requests()]

    assert result.returncode == 0, result.stderr[-3000:]
    assert requests_seen[:2] == [True, False], "the CLI did not retry without streaming"
    lines = fallback_lines(debug_log)
    assert any("triggering non-streaming fallback" in line for line in lines), lines
    assert any("falling back to non-streaming mode" in line for line in lines), lines
