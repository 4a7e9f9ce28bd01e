"""The real Claude Code CLI through the gateway to a strict fake OpenAI upstream (``gpt-4o``).

The same flow as ``test_claude_cli.py`` (both drive the CLI through ``cli_helpers.py``), with the
model behind the gateway speaking chat completions: the fake answers the user's prompt with a
streamed ``Write`` tool call and the tool result with "Done."; every request the gateway
translates must pass OpenAI's strict checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import cli_helpers
from tests.e2e.cli_helpers import CONTENT, PROMPT, assert_wrote_file, new_workspace, run_write_prompt
from tests.e2e.conftest import openai_env
from tests.e2e.helpers import Gateway
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


class WriteFileModel(cli_helpers.WriteFileModel[RecordedRequest, Behaviour]):
    """The model of :class:`cli_helpers.WriteFileModel` speaking chat completions."""

    call_id = "call_e2e_write_0001"

    def returns_tool_result(self, request: RecordedRequest) -> bool:
        last = request.messages[-1] if request.messages else {}
        return last.get("role") == "tool" and last.get("tool_call_id") == self.call_id

    def offers_write(self, request: RecordedRequest) -> bool:
        return "Write" in _function_names(request)

    def asks_for_file(self, request: RecordedRequest) -> bool:
        return _user_text_contains(request.messages, PROMPT)

    def answer(self, request: RecordedRequest, text: str) -> Behaviour:
        return StreamReply(text_chunks([text])) if request.stream else JsonReply(completion(text))

    def write_call(self, request: RecordedRequest, arguments: dict[str, str]) -> Behaviour:
        if request.stream:
            return StreamReply(tool_call_chunks([(self.call_id, "Write", arguments)], preface="Creating hello.txt."))
        return JsonReply(completion(None, tool_calls=[tool_call("Write", arguments, self.call_id)]))


def _function_names(request: RecordedRequest) -> set[str]:
    tools = request.body.get("tools") if isinstance(request.body, dict) else None
    return {t.get("function", {}).get("name") for t in tools or [] if isinstance(t, dict)}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def _user_text_contains(messages: list[dict[str, Any]], text: str) -> bool:
    return any(text in _text(m.get("content")) for m in messages if m.get("role") == "user")


def test_claude_code_writes_a_file_through_the_gateway_to_openai(make_gateway: Callable[..., Gateway],
                                                                 openai_upstream: FakeOpenAIUpstream,
                                                                 tmp_path: Path) -> None:
    """Prompt → streamed Write call → file on disk → "Done."; no silent fallback, nothing OpenAI would reject."""
    workspace, target = new_workspace(tmp_path)
    openai_upstream.responder = model = WriteFileModel(target)
    gateway = make_gateway(**openai_env(openai_upstream, LYNKR_API_KEYS=GATEWAY_KEY))

    result, debug_log, report = run_write_prompt(gateway.url, GATEWAY_KEY, workspace, tmp_path)

    upstream = openai_upstream.chat_requests()
    assert openai_upstream.rejections() == [], "the gateway sent what OpenAI rejects"
    assert_wrote_file(result, debug_log, report, target)

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
