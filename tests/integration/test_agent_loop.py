"""The server-side tool loop through the Flask client, against a scripted Databricks upstream."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from app.agent.splice import trace_session
from app.anthropic.events import validate_stream
from app.storage.db import db
from app.storage.models import AgentTrace, Task, ToolExecution
from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import CLIENT_HEADERS, make_message, read_events, sse_body
from tests.integration.test_messages_openai import PROVIDERS, chunk, make_completion, sse

WRITE_TOOL = {"name": "Write", "description": "Write a file",
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}


def tool_call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def answer(*content: dict[str, Any], stop_reason: str | None = None) -> dict[str, Any]:
    uses_tool = any(block["type"] == "tool_use" for block in content)
    return make_message(content=list(content), stop_reason=stop_reason or ("tool_use" if uses_tool else "end_turn"),
                        usage={"input_tokens": 100, "output_tokens": 10})


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def as_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Anthropic stream of a whole message."""
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 100, "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events += [{"type": "content_block_start", "index": index, "content_block": text("")},
                       {"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": block["text"]}}]
        else:
            events += [{"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
                       {"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}}]
        events.append({"type": "content_block_stop", "index": index})
    events += [{"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": 10}}, {"type": "message_stop"}]
    return events


class ScriptedUpstream:
    """Answers each upstream call with the next scripted message (JSON or SSE) and keeps the bodies."""

    def __init__(self, mocked: responses.RequestsMock, script: list[dict[str, Any]]) -> None:
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        mocked.add_callback(responses.POST, DATABRICKS_URL, callback=self._answer)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        body = json.loads(request.body)
        self.bodies.append(body)
        message = self.script.pop(0) if self.script else answer(text("(script ended)"))
        if body.get("stream"):
            return 200, {"content-type": "text/event-stream"}, sse_body(as_events(message))
        return 200, {"content-type": "application/json"}, json.dumps(message).encode()


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def agent_app(make_app: Callable[..., Flask], workspace: Path) -> Callable[..., Flask]:
    def build(**overrides: Any) -> Flask:
        return make_app(**{"workspace_root": str(workspace), **overrides})

    return build


def ask(client: FlaskClient, messages: list[dict[str, Any]], *, stream: bool = False,
        tools: list[dict[str, Any]] | None = None) -> Any:
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages,
                            "stream": stream}
    if tools is not None:
        body["tools"] = tools
    return client.post("/v1/messages", json=body, headers=CLIENT_HEADERS)


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in body.get("tools") or []]


def test_server_tool_runs_and_the_model_answers_without_the_client_seeing_the_call(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    upstream = ScriptedUpstream(mocked, [answer(text("Let me note that."),
                                                tool_call("toolu_1", "workspace_task_create", title="Ship it")),
                                         answer(text("Task created."))])
    response = ask(app.test_client(), [{"role": "user", "content": "track shipping"}])
    assert response.status_code == 200
    message = response.get_json()
    assert message["stop_reason"] == "end_turn"
    assert [block["type"] for block in message["content"]] == ["text"]
    assert message["content"][0]["text"] == "Let me note that.\n⚙ workspace_task_create(title=Ship it)\nTask created."
    assert message["usage"]["input_tokens"] == 200
    assert message["usage"]["output_tokens"] == 20
    assert len(upstream.bodies) == 2
    assert "workspace_task_create" in tool_names(upstream.bodies[0])
    second = upstream.bodies[1]["messages"]
    assert second[1] == {"role": "assistant", "content": [text("Let me note that."),
                                                          tool_call("toolu_1", "workspace_task_create",
                                                                    title="Ship it")]}
    assert second[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                      "content": "Created task #1: Ship it (todo, normal)"}]}
    with app.app_context(), db.connection_context():
        assert [(t.title, t.owner, t.session_id) for t in Task.select()] == [("Ship it", None, "sess-1")]
        assert ToolExecution.select().count() == 1


def test_the_next_request_gets_the_server_steps_spliced_back(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    client = app.test_client()
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_create", title="A")),
                                         answer(text("Created.")), answer(text("You have one task.")),
                                         answer(text("Still one."))])
    first = ask(client, [{"role": "user", "content": "add task A"}]).get_json()
    app.extensions["lynkr"].recorder.flush()
    history = [{"role": "user", "content": "add task A"}, {"role": "assistant", "content": first["content"]},
               {"role": "user", "content": "how many?"}]
    assert ask(client, history).status_code == 200
    assert upstream.bodies[2]["messages"] == [
        {"role": "user", "content": "add task A"},
        {"role": "assistant", "content": [tool_call("toolu_1", "workspace_task_create", title="A")]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "Created task #1: A (todo, normal)"}]},
        {"role": "assistant", "content": [text("Created.")]},
        {"role": "user", "content": "how many?"},
    ]
    # The next request splices the worker's kept copy of those steps: the same bytes go upstream.
    later = [*history, {"role": "assistant", "content": [text("You have one task.")]},
             {"role": "user", "content": "and now?"}]
    assert ask(client, later).status_code == 200
    assert upstream.bodies[3]["messages"] == [*upstream.bodies[2]["messages"],
                                              {"role": "assistant", "content": [text("You have one task.")]},
                                              {"role": "user", "content": "and now?"}]


def test_a_mixed_answer_returns_the_client_call_and_runs_the_server_one(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    client = app.test_client()
    upstream = ScriptedUpstream(mocked, [
        answer(tool_call("toolu_s", "workspace_task_create", title="B"),
               tool_call("toolu_c", "Write", file_path="a.txt")),
        answer(text("Both done.")),
    ])
    message = ask(client, [{"role": "user", "content": "go"}], tools=[WRITE_TOOL]).get_json()
    assert message["stop_reason"] == "tool_use"
    assert [b for b in message["content"] if b["type"] == "tool_use"] == [tool_call("toolu_c", "Write",
                                                                                    file_path="a.txt")]
    assert "workspace_task_create" in tool_names(upstream.bodies[0])
    app.extensions["lynkr"].recorder.flush()
    client_result = {"type": "tool_result", "tool_use_id": "toolu_c", "content": "written"}
    ask(client, [{"role": "user", "content": "go"}, {"role": "assistant", "content": message["content"]},
                 {"role": "user", "content": [client_result]}], tools=[WRITE_TOOL])
    sent = upstream.bodies[1]["messages"]
    assert sent[1]["content"] == [tool_call("toolu_s", "workspace_task_create", title="B"),
                                  tool_call("toolu_c", "Write", file_path="a.txt")]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_s",
                                   "content": "Created task #1: B (todo, normal)"}, client_result]


def test_the_step_limit_ends_the_turn_as_an_assistant_message(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(policy_max_steps=2)
    upstream = ScriptedUpstream(mocked, [answer(tool_call(f"toolu_{n}", "workspace_tasks_list")) for n in range(5)])
    response = ask(app.test_client(), [{"role": "user", "content": "loop"}])
    assert response.status_code == 200
    message = response.get_json()
    assert message["stop_reason"] == "end_turn"
    assert "POLICY_MAX_STEPS" in message["content"][-1]["text"]
    assert len(upstream.bodies) == 2


def test_the_tool_call_limit_stops_before_running_more(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(policy_max_tool_calls=1)
    ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_create", title="x"),
                                     tool_call("toolu_2", "workspace_task_create", title="y"))])
    message = ask(app.test_client(), [{"role": "user", "content": "two"}]).get_json()
    assert "POLICY_MAX_TOOL_CALLS" in message["content"][-1]["text"]
    with app.app_context(), db.connection_context():
        assert Task.select().count() == 0


def test_each_step_passes_the_budget_check(agent_app: Callable[..., Flask], mocked: Any) -> None:
    # A session budget is checked before every model call; the first step alone (110 tokens) spends it.
    app = agent_app(budget_session_tokens=100)
    upstream = ScriptedUpstream(mocked, [answer(tool_call(f"toolu_{n}", "workspace_tasks_list")) for n in range(3)])
    response = ask(app.test_client(), [{"role": "user", "content": "loop"}])
    assert response.status_code == 200
    message = response.get_json()
    assert message["stop_reason"] == "end_turn"
    assert "budget" in message["content"][-1]["text"]
    assert len(upstream.bodies) == 1


def test_a_failing_tool_gives_the_model_an_error_result(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_delete", id=99)),
                                         answer(text("No such task."))])
    assert ask(app.test_client(), [{"role": "user", "content": "delete 99"}]).status_code == 200
    result = upstream.bodies[1]["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert "99" in result["content"]


def test_streaming_shows_progress_and_the_answer_in_one_valid_stream(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    upstream = ScriptedUpstream(mocked, [answer(text("Checking."), tool_call("toolu_1", "workspace_tasks_list")),
                                         answer(text("Nothing to do."))])
    response = ask(app.test_client(), [{"role": "user", "content": "tasks?"}], stream=True)
    assert response.status_code == 200
    events = read_events(response.get_data())
    validate_stream(events)
    assert not [e for e in events if e["type"] == "content_block_start"
                and e["content_block"]["type"] == "tool_use"]
    shown = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert shown == "Checking.\n⚙ workspace_tasks_list()\nNothing to do."
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert [body["stream"] for body in upstream.bodies] == [True, True]
    assert upstream.bodies[1]["messages"][-1]["content"][0]["content"] == "No tasks."


def test_streaming_passes_a_client_tool_call_through_with_its_id(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    ScriptedUpstream(mocked, [answer(tool_call("toolu_c", "Write", file_path="a.txt"))])
    events = read_events(ask(app.test_client(), [{"role": "user", "content": "write"}], stream=True,
                             tools=[WRITE_TOOL]).get_data())
    validate_stream(events)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [{"type": "tool_use", "id": "toolu_c", "name": "Write", "input": {}}]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_a_repeated_tool_use_id_in_a_session_runs_once(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    client = app.test_client()
    call = tool_call("toolu_same", "workspace_task_create", title="once")
    upstream = ScriptedUpstream(mocked, [answer(call), answer(text("ok")), answer(call), answer(text("ok"))])
    ask(client, [{"role": "user", "content": "make it"}])
    ask(client, [{"role": "user", "content": "make it"}])
    with app.app_context(), db.connection_context():
        assert Task.select().count() == 1
    assert upstream.bodies[3]["messages"][-1]["content"][0]["content"] == "Created task #1: once (todo, normal)"


@pytest.mark.parametrize("overrides", [{"tool_execution_mode": "client"}, {"tool_execution_mode": "passthrough"},
                                       {"workspace_root": ""}, {"server_tools": "none"}])
def test_no_lynkr_tools_are_offered_or_run_when_off(make_app: Callable[..., Flask], workspace: Path,
                                                    mocked: Any, overrides: dict[str, Any]) -> None:
    app = make_app(**{"workspace_root": str(workspace), **overrides})
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_create", title="x"))])
    message = ask(app.test_client(), [{"role": "user", "content": "x"}], tools=[WRITE_TOOL]).get_json()
    assert tool_names(upstream.bodies[0]) == ["Write"]
    assert message["stop_reason"] == "tool_use"
    assert message["content"][0]["name"] == "workspace_task_create"


def test_tools_duplicating_client_tools_are_not_offered(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(server_tools="auto")
    upstream = ScriptedUpstream(mocked, [answer(text("hi"))])
    ask(app.test_client(), [{"role": "user", "content": "x"}], tools=[WRITE_TOOL])
    offered = tool_names(upstream.bodies[0])
    assert offered[0] == "Write"
    assert "fs_write" not in offered


def test_a_client_declaring_a_lynkr_tool_gets_it_run_on_the_server(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(server_tools="none")
    declared = {"name": "workspace_tasks_list", "description": "list", "input_schema": {"type": "object"}}
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_tasks_list")), answer(text("none"))])
    message = ask(app.test_client(), [{"role": "user", "content": "x"}], tools=[declared]).get_json()
    assert tool_names(upstream.bodies[0]) == ["workspace_tasks_list"]
    assert message["stop_reason"] == "end_turn"
    assert upstream.bodies[1]["messages"][-1]["content"][0]["content"] == "No tasks."


def test_traces_are_kept_per_session(agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app()
    ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_tasks_list")), answer(text("done"))])
    ask(app.test_client(), [{"role": "user", "content": "x"}])
    with app.app_context(), db.connection_context():
        assert [t.session_id for t in AgentTrace.select()] == [trace_session("sess-1", None)]


def test_another_keys_request_in_the_same_session_gets_none_of_its_steps(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(api_keys=("sk-lynkr-owner", "sk-lynkr-other"))
    client = app.test_client()
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_create", title="A")),
                                         answer(text("Created.")), answer(text("Other.")), answer(text("Mine."))])
    first = client.post("/v1/messages", headers={**CLIENT_HEADERS, "x-api-key": "sk-lynkr-owner"},
                        json={"model": "claude-sonnet-4-5", "max_tokens": 64,
                              "messages": [{"role": "user", "content": "add task A"}]}).get_json()
    app.extensions["lynkr"].recorder.flush()
    history = [{"role": "user", "content": "add task A"}, {"role": "assistant", "content": first["content"]},
               {"role": "user", "content": "what did you do?"}]
    for key in ("sk-lynkr-other", "sk-lynkr-owner"):
        response = client.post("/v1/messages", headers={**CLIENT_HEADERS, "x-api-key": key},
                               json={"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": history})
        assert response.status_code == 200
    assert upstream.bodies[2]["messages"] == history  # the other key: the shown message, not the steps
    assert upstream.bodies[3]["messages"][1]["content"] == [tool_call("toolu_1", "workspace_task_create", title="A")]


def test_another_key_reusing_a_tool_use_id_in_the_same_session_runs_its_own_tool(
        agent_app: Callable[..., Flask], mocked: Any) -> None:
    app = agent_app(api_keys=("sk-lynkr-owner", "sk-lynkr-other"))
    client = app.test_client()
    upstream = ScriptedUpstream(mocked, [answer(tool_call("toolu_1", "workspace_task_create", title="Secret")),
                                         answer(text("Created.")),
                                         answer(tool_call("toolu_1", "workspace_task_create", title="Mine")),
                                         answer(text("Created too."))])
    for key in ("sk-lynkr-owner", "sk-lynkr-other"):
        response = client.post("/v1/messages", headers={**CLIENT_HEADERS, "x-api-key": key},
                               json={"model": "claude-sonnet-4-5", "max_tokens": 64,
                                     "messages": [{"role": "user", "content": "add a task"}]})
        assert response.status_code == 200
    results = [body["messages"][-1]["content"][0]["content"] for body in (upstream.bodies[1], upstream.bodies[3])]
    assert "Secret" in results[0]
    assert "Mine" in results[1]
    assert "Secret" not in results[1], "the other key never gets the owner's result"
    with app.app_context(), db.connection_context():
        assert sorted(task.title for task in Task.select()) == ["Mine", "Secret"]
        assert ToolExecution.select().count() == 2


# -- the loop with chat-completions providers ------------------------------------------------------


class ScriptedChatUpstream:
    """A chat-completions upstream: a tool call to ``workspace_task_create``, then a text answer."""

    def __init__(self, mocked: responses.RequestsMock, url: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        mocked.add_callback(responses.POST, url, callback=self._answer)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        body = json.loads(request.body)
        self.bodies.append(body)
        call = {"id": "call_1", "type": "function",
                "function": {"name": "workspace_task_create", "arguments": json.dumps({"title": "From GPT"})}}
        first = len(self.bodies) == 1
        if body.get("stream"):
            delta = {"role": "assistant", "tool_calls": [{"index": 0, **call}]} if first else {"content": "Noted."}
            chunks = [chunk(delta), chunk({}, "tool_calls" if first else "stop"),
                      chunk(usage={"prompt_tokens": 50, "completion_tokens": 5})]
            return 200, {"content-type": "text/event-stream"}, sse([*chunks, b"[DONE]"])
        message = {"tool_calls": [call], "content": None} if first else {"content": "Noted."}
        completion = make_completion(**message)
        completion["choices"][0]["finish_reason"] = "tool_calls" if first else "stop"
        return 200, {"content-type": "application/json"}, json.dumps(completion).encode()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "azure-openai", "openrouter", "openai-compatible"])
def test_the_loop_runs_with_chat_completions_providers(make_app: Callable[..., Flask], workspace: Path,
                                                       mocked: Any, provider: str, stream: bool) -> None:
    settings, url, _, _ = PROVIDERS[provider]
    app = make_app(model_provider=provider, fallback_enabled=False, workspace_root=str(workspace), **settings)
    upstream = ScriptedChatUpstream(mocked, url)
    response = ask(app.test_client(), [{"role": "user", "content": "note it"}], stream=stream)
    assert response.status_code == 200
    if stream:
        events = read_events(response.get_data())
        validate_stream(events)
        shown = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    else:
        shown = "".join(b["text"] for b in response.get_json()["content"])
    assert shown == "\n⚙ workspace_task_create(title=From GPT)\nNoted."
    assert "workspace_task_create" in [t["function"]["name"] for t in upstream.bodies[0]["tools"]]
    tool_message = upstream.bodies[1]["messages"][-1]
    assert tool_message == {"role": "tool", "tool_call_id": "call_1",
                            "content": "Created task #1: From GPT (todo, normal)"}
    with app.app_context(), db.connection_context():
        assert [t.title for t in Task.select()] == ["From GPT"]
