from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.storage.db import db
from app.storage.models import ClientRequest, ToolExecution
from app.storage.transcripts import record_exchange
from app.web.transcript import block_text, list_sessions, load_transcript


@pytest.fixture
def database(make_app: Any) -> Iterator[None]:
    app = make_app()
    with app.app_context(), db.connection_context():
        record_exchange("s1", "key_a", [{"role": "user", "content": "hi"}],
                        {"content": [{"type": "text", "text": "yo"}]})
        record_exchange("s2", "key_b", [{"role": "user", "content": "other"}], None)
        ClientRequest.create(request_id="r1", session_id="s1", api_key="key_a", path="/v1/messages", cost_usd=0.25,
                             status=200)
        ClientRequest.create(request_id="r2", session_id="s1", api_key="key_a", path="/v1/messages", cost_usd=None,
                             status=200)
        ToolExecution.create(session_id="s1", owner="key_a", tool_use_id="toolu_1", name="workspace_read",
                             input='{"path": "a"}', result=json.dumps([{"type": "text", "text": "line 1"}]),
                             is_error=True)
        yield


@pytest.mark.usefixtures("database")
def test_sessions_are_listed_with_turns_requests_and_cost_for_an_owner_or_all() -> None:
    rows = list_sessions(None, {"key_a": "alice"})
    assert {(r.id, r.owner, r.turns, r.requests, r.cost_usd) for r in rows} == {
        ("s1", "alice", 2, 2, 0.25), ("s2", "key_b", 1, 0, 0.0)}
    assert [r.id for r in list_sessions("key_b", {})] == ["s2"]


@pytest.mark.usefixtures("database")
def test_a_transcript_has_turns_server_tools_and_priced_cost() -> None:
    transcript = load_transcript("s1", {})
    assert transcript is not None
    assert [t["role"] for t in transcript.turns] == ["user", "assistant"]
    assert transcript.owner_id == "key_a"
    assert transcript.cost_usd == 0.25
    assert transcript.server_tool_ids == frozenset({"toolu_1"})
    tool = transcript.tools[0]
    assert (tool.name, tool.input, tool.result, tool.is_error) == ("workspace_read", '{\n  "path": "a"\n}',
                                                                   "line 1", True)
    assert load_transcript("missing", {}) is None


@pytest.mark.usefixtures("database")
def test_a_stored_tool_result_block_shows_its_content() -> None:
    ToolExecution.create(session_id="s1", owner="key_a", tool_use_id="toolu_2", name="workspace_task_create",
                         input="{}",
                         result=json.dumps({"type": "tool_result", "tool_use_id": "toolu_2", "content": "Created #1"}))
    transcript = load_transcript("s1", {})
    assert transcript is not None
    assert [t.result for t in transcript.tools] == ["line 1", "Created #1"]


@pytest.mark.usefixtures("database")
def test_another_keys_runs_and_requests_under_the_same_session_id_are_not_in_the_owners_transcript() -> None:
    ClientRequest.create(request_id="r9", session_id="s1", api_key="key_b", path="/v1/messages", cost_usd=9.0,
                         status=200)
    ToolExecution.create(session_id="s1", owner="key_b", tool_use_id="toolu_9", name="workspace_read", input="{}",
                         result=json.dumps("key b's file"))
    ToolExecution.create(session_id="s1", tool_use_id="toolu_8", name="workspace_read", input="{}",
                         result=json.dumps("a run without a key"))
    transcript = load_transcript("s1", {})
    assert transcript is not None
    assert [t.tool_use_id for t in transcript.tools] == ["toolu_1"]
    assert [r["request_id"] for r in transcript.requests] == ["r1", "r2"]
    assert transcript.cost_usd == 0.25
    row = next(r for r in list_sessions(None, {}) if r.id == "s1")
    assert (row.requests, row.cost_usd) == (2, 0.25)


def test_blocks_as_text() -> None:
    assert block_text({"type": "text", "text": "hello"}) == "hello"
    assert block_text({"type": "tool_use", "input": {"a": 1}}) == '{\n  "a": 1\n}'
    assert block_text({"type": "tool_result", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}) == \
        "x\n[image]"
    assert block_text({"type": "tool_result", "content": "plain"}) == "plain"
    assert block_text({"type": "image"}) == "[image]"
