"""Ollama through /v1/messages: /api/chat bodies, NDJSON streams, /api/show capability detection."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from responses import matchers

from app import create_app
from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from app.providers.ollama import ndjson_items
from app.providers.wire import READING
from app.resilience.retry import InProcessStore
from tests.integration.test_messages_anthropic import make_request

ENDPOINT = "http://ollama.test:11434"
CHAT_URL = ENDPOINT + "/api/chat"
SHOW_URL = ENDPOINT + "/api/show"
MODEL = "qwen2.5-coder:7b"
READ = {"name": "Read", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
READ_FUNCTION = {"type": "function", "function": {"name": "Read", "description": "Read a file", "parameters": {
    "type": "object", "properties": {"file_path": {"type": "string"}}}}}


def make_client(make_config: Any, drain: Any, **settings: Any) -> FlaskClient:
    values = {"model_provider": "ollama", "ollama_endpoint": ENDPOINT + "/", "ollama_model": MODEL,
              "fallback_enabled": False, **settings}
    return create_app(make_config(**values), drain=drain, breaker_store=InProcessStore()).test_client()


def make_answer(**message: Any) -> dict[str, Any]:
    return {"model": MODEL, "created_at": "2025-06-01T12:00:00Z",
            "message": {"role": "assistant", "content": "Hi there", **message},
            "done": True, "done_reason": "stop", "prompt_eval_count": 20, "eval_count": 3}


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def mocked_ollama_show(mocked: responses.RequestsMock, body: dict[str, Any], model: str = MODEL) -> None:
    mocked.post(SHOW_URL, json=body, match=[matchers.json_params_matcher({"model": model})])


def events_of(data: bytes) -> list[dict[str, Any]]:
    events = [event.json() for event in SSEDecoder().feed(data)]
    validate_stream(events)
    return events


def log_messages(err: str) -> list[str]:
    return [json.loads(line)["message"] for line in err.splitlines() if line.startswith("{")]


def test_json_answer(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain, ollama_keep_alive="10m")
    expected = {"model": MODEL, "stream": False, "keep_alive": "10m", "options": {"num_predict": 1024},
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}
    with responses.RequestsMock() as mocked:
        mocked.post(CHAT_URL, json=make_answer(), match=[matchers.json_params_matcher(expected)])
        response = client.post("/v1/messages", json=make_request(system="Be brief."))
        sent = mocked.calls[0].request
    assert response.status_code == 200, response.get_json()
    message = response.get_json()
    assert message["model"] == "claude-sonnet-4-5-20250929"
    assert message["content"] == [{"type": "text", "text": "Hi there"}]
    assert message["usage"] == {"input_tokens": 20, "output_tokens": 3}
    assert response.headers["X-Lynkr-Model"] == MODEL
    assert "authorization" not in sent.headers
    assert sent.headers["accept"] == "application/json"


def test_ndjson_stream_with_a_whole_tool_call(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain)
    lines = [
        {"model": MODEL, "message": {"role": "assistant", "content": "Reading."}, "done": False},
        {"model": MODEL, "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "Read", "arguments": {"file_path": "a.txt"}}}]}, "done": False},
        {"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "prompt_eval_count": 30, "eval_count": 9},
    ]
    expected = {"model": MODEL, "stream": True, "options": {"num_predict": 1024}, "tools": [READ_FUNCTION],
                "messages": [{"role": "user", "content": "Hello"}]}
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion", "tools"]})
        mocked.post(CHAT_URL, body=ndjson(lines), content_type="application/x-ndjson",
                    match=[matchers.json_params_matcher(expected)])
        response = client.post("/v1/messages", json=make_request(stream=True, tools=[READ]))
        events = events_of(response.get_data())
        assert mocked.calls[1].request.headers["accept"] == "application/x-ndjson"
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "tool_use"]
    assert blocks[1]["id"].startswith("toolu_")
    assert {"type": "input_json_delta", "partial_json": '{"file_path":"a.txt"}'} in [
        e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 30, "output_tokens": 9}


def test_stream_error_line_becomes_an_error_event(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain)
    lines = [{"model": MODEL, "message": {"role": "assistant", "content": "Once"}, "done": False},
             {"error": "llama runner process has terminated"}]
    with responses.RequestsMock() as mocked:
        mocked.post(CHAT_URL, body=ndjson(lines), content_type="application/x-ndjson")
        response = client.post("/v1/messages", json=make_request(stream=True))
        events = events_of(response.get_data())
    assert events[-1] == {"type": "error", "error": {"type": "api_error",
                                                     "message": "llama runner process has terminated"}}


@pytest.mark.parametrize(
    ("show", "tools_sent"),
    [
        ({"capabilities": ["completion", "tools"]}, True),
        ({"capabilities": ["completion"], "template": "{{ .Tools }}"}, False),
        ({"template": "{{- if .Tools }}<tools>{{ .Tools }}</tools>{{ end }}{{ .Prompt }}"}, True),
        ({"template": "{{ .System }} {{ .Prompt }}"}, False),
    ],
)
def test_tool_support_from_api_show(make_config: Any, drain: Any, capsys: Any, show: dict[str, Any],
                                    tools_sent: bool) -> None:
    client = make_client(make_config, drain)
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, show)
        mocked.post(CHAT_URL, json=make_answer())
        response = client.post("/v1/messages", json=make_request(tools=[READ]))
        sent = json.loads(mocked.calls[1].request.body)
    assert response.status_code == 200
    assert ("tools" in sent) is tools_sent
    warning = f"Ollama model {MODEL} has no tool support: sending the request without its tools"
    assert (warning in log_messages(capsys.readouterr().err)) is not tools_sent


def test_api_show_is_cached_per_model(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain, prompt_cache_enabled=False)  # both requests reach Ollama
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion", "tools"]})
        mocked.post(CHAT_URL, json=make_answer())
        for _ in range(2):
            assert client.post("/v1/messages", json=make_request(tools=[READ])).status_code == 200
        urls = [call.request.url for call in mocked.calls]
    assert urls == [SHOW_URL, CHAT_URL, CHAT_URL]


def test_requests_without_tools_or_thinking_ask_nothing(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain)
    with responses.RequestsMock() as mocked:
        mocked.post(CHAT_URL, json=make_answer())
        assert client.post("/v1/messages", json=make_request()).status_code == 200
        assert [call.request.url for call in mocked.calls] == [CHAT_URL]


def test_unreachable_api_show_falls_back_to_the_model_name(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain, ollama_model="gemma3:12b")
    with responses.RequestsMock() as mocked:
        mocked.post(SHOW_URL, status=404, json={"error": "model 'gemma3:12b' not found"})
        mocked.post(CHAT_URL, json=make_answer())
        response = client.post("/v1/messages", json=make_request(tools=[READ]))
        sent = json.loads(mocked.calls[1].request.body)
    assert response.status_code == 200
    assert "tools" not in sent  # gemma3 is not in the list of tool-calling families


def test_thinking_left_out_for_a_model_that_cannot_think(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain)
    thinking = {"type": "enabled", "budget_tokens": 2048}
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion", "tools"]})
        mocked.post(CHAT_URL, json=make_answer())
        client.post("/v1/messages", json=make_request(thinking=thinking))
        sent = json.loads(mocked.calls[1].request.body)
    assert "think" not in sent


def test_thinking_model_gets_think(make_config: Any, drain: Any) -> None:
    client = make_client(make_config, drain, ollama_model="qwen3:8b")
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion", "tools", "thinking"]}, model="qwen3:8b")
        mocked.post(CHAT_URL, json=make_answer(thinking="Easy."))
        response = client.post("/v1/messages", json=make_request(thinking={"type": "adaptive"}))
        sent = json.loads(mocked.calls[1].request.body)
    assert sent["think"] is True
    assert [block["type"] for block in response.get_json()["content"]] == ["thinking", "text"]


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (404, f'model "{MODEL}" not found, try pulling it first',
         (404, "not_found_error", f'model "{MODEL}" not found, try pulling it first')),
        (400, "input length (40000 tokens) exceeds the model's maximum context length (32768 tokens)",
         (400, "invalid_request_error", "prompt is too long: 40000 tokens > 32768 maximum")),
    ],
)
def test_errors(make_config: Any, drain: Any, status: int, error: str, expected: tuple[int, str, str]) -> None:
    client = make_client(make_config, drain)
    with responses.RequestsMock() as mocked:
        mocked.post(CHAT_URL, status=status, json={"error": error})
        response = client.post("/v1/messages", json=make_request())
    assert (response.status_code, response.get_json()["error"]["type"],
            response.get_json()["error"]["message"]) == expected


def test_read_timeout_is_ollama_timeout(make_config: Any, drain: Any) -> None:
    app = create_app(make_config(model_provider="ollama", ollama_timeout_ms=45000, connect_timeout_ms=3000),
                     drain=drain)
    assert app.extensions["lynkr"].providers["ollama"].http.timeout == (3.0, 45.0)


def test_ndjson_lines_split_across_reads() -> None:
    chunks = [b'{"a": 1}\n{"b"', READING, b': 2}\n\n', b"\n", READING, b'{"c": 3}']
    assert list(ndjson_items(chunks)) == [{"a": 1}, READING, {"b": 2}, READING, {"c": 3}]


def test_tools_for_a_model_without_tool_support_go_to_the_fallback(make_config: Any, drain: Any) -> None:
    from tests.conftest import DATABRICKS_URL
    from tests.integration.test_messages_anthropic import make_message

    client = make_client(make_config, drain, fallback_enabled=True, fallback_provider="databricks")
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion"]})
        mocked.post(DATABRICKS_URL, json=make_message())
        response = client.post("/v1/messages", json={
            "model": "claude-sonnet-4-5", "max_tokens": 100, "tools": [READ],
            "messages": [{"role": "user", "content": "read a.txt"}]})
        assert [c.request.url for c in mocked.calls] == [SHOW_URL, DATABRICKS_URL]
    assert response.status_code == 200
    assert response.headers["X-Lynkr-Provider"] == "databricks"


def test_hybrid_routing_counts_only_the_clients_tools(make_config: Any, drain: Any, tmp_path: Any) -> None:
    client = make_client(make_config, drain, prefer_ollama=True, fallback_enabled=True,
                         tool_execution_mode="server", workspace_root=str(tmp_path))
    write = {**READ, "name": "Write", "description": "Write a file"}
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": ["completion", "tools"]})
        mocked.post(CHAT_URL, json=make_answer())
        response = client.post("/v1/messages", json=make_request(tools=[READ, write]))
        sent = json.loads(mocked.calls[1].request.body)
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-Lynkr-Provider"] == "ollama"
    assert response.headers["X-Lynkr-Route-Reason"] == "tools_under_ollama_limit"
    names = [tool["function"]["name"] for tool in sent["tools"]]
    assert names[:2] == ["Read", "Write"]
    assert len(names) > 3, "the gateway's own tools go to Ollama but were not counted for routing"


@pytest.mark.parametrize(("capabilities", "sees"), [(["completion", "vision"], True), (["completion"], False)])
def test_an_image_goes_to_a_model_whose_api_show_lists_vision(make_config: Any, drain: Any,
                                                              capabilities: list[str], sees: bool) -> None:
    model = "qwen2.5vl:7b"  # the capability table guesses no vision for qwen*
    client = make_client(make_config, drain, ollama_model=model)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    body = make_request(messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}])
    with responses.RequestsMock() as mocked:
        mocked_ollama_show(mocked, {"capabilities": capabilities}, model=model)
        mocked.post(CHAT_URL, json=make_answer())
        response = client.post("/v1/messages", json=body)
        sent = json.loads(mocked.calls[-1].request.body)
    assert response.status_code == 200
    last = sent["messages"][-1]
    if sees:
        assert last == {"role": "user", "content": "What is it?", "images": ["iVBORw0KGgo="]}
    else:
        assert "images" not in last
        assert last["content"].startswith("[image omitted")
