"""The real Claude Code CLI against a gateway in ``server`` tool mode.

The fake upstream plays a model that first records a task with Lynkr's own
``workspace_task_create`` (run by the gateway, never shown to the CLI as a tool call), then asks
the CLI to ``Write`` the file, then answers "Done." — so one turn mixes a server tool and a
client tool, and the request after the client tool must carry the server step spliced back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli_helpers import PROMPT, assert_wrote_file, new_workspace, run_write_prompt, stream_json
from tests.e2e.helpers import Gateway
from tests.e2e.test_claude_cli import WriteFileModel, _blocks, _messages, _tool_result_ids
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import Behaviour, FakeAnthropicUpstream, JsonReply, RecordedRequest, StreamReply

pytestmark = [pytest.mark.cli, pytest.mark.slow]

GATEWAY_KEY = "sk-e2e-agent-key-00000001"
TASK_ID = "toolu_e2e_task_0001"
TASK_TITLE = "Create hello.txt"


class TaskThenWriteModel(WriteFileModel):
    """Records a task on the server first, then behaves like :class:`WriteFileModel`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.task_call_sent = False

    def __call__(self, request: RecordedRequest) -> Behaviour | None:
        messages = _messages(request)
        if messages and TASK_ID in _tool_result_ids(messages[-1]) and self.offers_write(request):
            self.tool_call_sent = True
            return self.write_call(request, {"file_path": str(self.path), "content": "hello from lynkr"})
        if (self.asks_for_file(request) and self.offers_task_tool(request) and not self.task_call_sent
                and not self.returns_tool_result(request)):
            self.task_call_sent = True
            return self.task_call(request)
        return super().__call__(request)

    @staticmethod
    def offers_task_tool(request: RecordedRequest) -> bool:
        body = request.body if isinstance(request.body, dict) else {}
        return "workspace_task_create" in {tool.get("name") for tool in body.get("tools") or []}

    @staticmethod
    def task_call(request: RecordedRequest) -> Behaviour:
        arguments = {"title": TASK_TITLE}
        if request.stream:
            return StreamReply(ev.tool_use_events("workspace_task_create", arguments, tool_id=TASK_ID,
                                                  preface="Noting the task."))
        return JsonReply(ev.message([ev.tool_use_block("workspace_task_create", arguments, TASK_ID)],
                                    stop_reason="tool_use"))


def test_claude_code_turn_with_a_server_task_tool_and_a_client_write(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, tmp_path: Path) -> None:
    workspace, target = new_workspace(tmp_path)
    mocked_upstream.responder = model = TaskThenWriteModel(target)
    gateway = make_gateway(LYNKR_API_KEYS=GATEWAY_KEY, TOOL_EXECUTION_MODE="server",
                           WORKSPACE_ROOT=str(workspace))

    result, debug_log, report = run_write_prompt(gateway.url, GATEWAY_KEY, workspace, tmp_path)

    assert_wrote_file(result, debug_log, report, target)
    assert model.task_call_sent
    assert model.tool_call_sent
    tool_uses = [b for e in stream_json(result.stdout) if e.get("type") == "assistant"
                 for b in e["message"]["content"] if b.get("type") == "tool_use"]
    assert [b["name"] for b in tool_uses] == ["Write"], "the CLI was shown a server tool call"

    upstream = [r for r in mocked_upstream.message_requests() if _asks(r)]
    after_write = next(r for r in upstream if WriteFileModel.tool_id in _tool_result_ids(_messages(r)[-1]))
    history_ids = {b.get("id") for m in _messages(after_write) for b in _blocks(m) if b.get("type") == "tool_use"}
    assert TASK_ID in history_ids, "the server step was not spliced into the next request"
    assert [r.rejected for r in mocked_upstream.message_requests() if r.rejected] == []

    with sqlite3.connect(gateway.workdir / "lynkr.db") as conn:
        rows = conn.execute("SELECT title, status FROM tasks").fetchall()
    assert rows == [(TASK_TITLE, "todo")]


def _asks(request: RecordedRequest) -> bool:
    body: Any = request.body
    return isinstance(body, dict) and any(PROMPT in b.get("text", "") for m in body.get("messages") or []
                                          if m.get("role") == "user" for b in _blocks(m))
