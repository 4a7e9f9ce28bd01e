"""The real Claude Code CLI through the gateway to a strict fake OpenAI upstream (``gpt-4o``).

The same flow as ``test_claude_cli.py``, with the model behind the gateway speaking chat
completions: the fake answers the user's prompt with a streamed ``Write`` tool call and the tool
result with "Done."; every request the gateway translates must pass OpenAI's strict checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import openai_env
from tests.e2e.helpers import Gateway
from tests.e2e.test_claude_cli import CLAUDE_VERSION, CONTENT, FALLBACK_MARKERS, PROMPT, run_claude
from tests.fakes.openai_upstream import (
    Behaviour,
    FakeOpenAIUpstream,
    JsonReply,
    RecordedRequest,
    StreamReply,
    completion,
    text_chunks,
    tool_call,
    tool_call_chunks,
)

pytestmark = [pytest.mark.cli, pytest.mark.slow]

GATEWAY_KEY = "sk-e2e-cli-openai-key-0001"


class WriteFileModel:
    """Answers like a model asked to create ``path``: a Write call, then "Done." after its result."""

    call_id = "call_e2e_write_0001"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tool_call_sent = False

    def __call__(self, request: RecordedRequest) -> Behaviour | None:
        messages = request.messages
        if messages and messages[-1].get("role") == "tool" and messages[-1].get("tool_call_id") == self.call_id:
            return _answer(request, "Done.")
        if not self.tool_call_sent and "Write" in _function_names(request) and _user_text_contains(messages, PROMPT):
            self.tool_call_sent = True
            arguments = {"file_path": str(self.path), "content": CONTENT}
            if request.stream:
                calls = [(self.call_id, "Write", arguments)]
                return StreamReply(tool_call_chunks(calls, preface="Creating hello.txt."))
            return JsonReply(completion(None, tool_calls=[tool_call("Write", arguments, self.call_id)]))
        return None  # side requests (titles, summaries, ...): the fake's short default answer


def _answer(request: RecordedRequest, text: str) -> Behaviour:
    return StreamReply(text_chunks([text])) if request.stream else JsonReply(completion(text))


def _function_names(request: RecordedRequest) -> set[str]:
    tools = request.body.get("tools") if isinstance(request.body, dict) else None
    return {t.get("function", {}).get("name") for t in tools or [] if isinstance(t, dict)}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def _user_text_contains(messages: list[dict[str, Any]], text: str) -> bool:
    return any(text in _text(m.get("content")) for m in messages if m.get("role") == "user")


def _fallback_lines(debug_log: Path) -> list[str]:
    return [line for line in debug_log.read_text(errors="replace").splitlines()
            if any(marker.lower() in line.lower() for marker in FALLBACK_MARKERS)]


def test_claude_code_writes_a_file_through_the_gateway_to_openai(make_gateway: Callable[..., Gateway],
                                                                 openai_upstream: FakeOpenAIUpstream,
                                                                 tmp_path: Path) -> None:
    """Prompt → streamed Write call → file on disk → "Done."; no silent fallback, nothing OpenAI would reject."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    target = workspace / "hello.txt"
    openai_upstream.responder = model = WriteFileModel(target)
    gateway = make_gateway(**openai_env(openai_upstream, LYNKR_API_KEYS=GATEWAY_KEY))

    result, debug_log = run_claude(gateway.url, GATEWAY_KEY, workspace, tmp_path, PROMPT,
                                   "--permission-mode", "acceptEdits")

    report = f"exit {result.returncode}\nstdout tail:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    upstream = openai_upstream.chat_requests()
    assert openai_upstream.rejections() == [], "the gateway sent what OpenAI rejects"
    assert result.returncode == 0, report
    assert target.read_text() == CONTENT
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert events[0]["type"] == "system"
    assert events[0]["claude_code_version"] == CLAUDE_VERSION
    final = events[-1]
    assert final["type"] == "result", report
    assert (final["is_error"], final["subtype"], final["result"]) == (False, "success", "Done.")

    debug = debug_log.read_text(errors="replace")
    assert "Stream started - received first chunk" in debug, "the debug log does not show the streams"
    assert _fallback_lines(debug_log) == []

    assert model.tool_call_sent
    turns = [r for r in upstream if _user_text_contains(r.messages, PROMPT)]
    assert len(turns) >= 2, [r.messages[-1:] for r in upstream]
    assert all(r.stream for r in turns), "a turn of the conversation was sent without streaming"
    assistant, result_message = turns[-1].messages[-2:]
    assert [c["id"] for c in assistant["tool_calls"]] == [WriteFileModel.call_id]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"file_path": str(target),
                                                                              "content": CONTENT}
    assert result_message["role"] == "tool"
    assert result_message["tool_call_id"] == WriteFileModel.call_id
