"""The chat-completions providers: URL, auth and body per provider, JSON and SSE answers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import responses

from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from tests.integration.test_messages_anthropic import make_request

PROVIDERS = {
    "openai": ({"openai_api_key": "sk-openai-test-1234"}, "https://api.openai.com/v1/chat/completions",
               {"authorization": "Bearer sk-openai-test-1234"}, "gpt-4o"),
    "azure-openai": ({"azure_openai_endpoint": "https://res.openai.azure.com/", "azure_openai_api_key": "az-key-123456",
                      "azure_openai_deployment": "gpt-5-mini"},
                     "https://res.openai.azure.com/openai/deployments/gpt-5-mini/chat/completions?api-version=2024-10-21",
                     {"api-key": "az-key-123456"}, "gpt-5-mini"),
    "openrouter": ({"openrouter_api_key": "sk-or-test-123456"}, "https://openrouter.ai/api/v1/chat/completions",
                   {"authorization": "Bearer sk-or-test-123456", "http-referer": "https://github.com/lynkr",
                    "x-title": "Lynkr"}, "openai/gpt-4o-mini"),
    "openai-compatible": ({"openai_compatible_endpoint": "http://127.0.0.1:8000/v1",
                           "openai_compatible_model": "qwen2.5-coder"},
                          "http://127.0.0.1:8000/v1/chat/completions", {}, "qwen2.5-coder"),
    "databricks": ({"databricks_endpoint_path": "/serving-endpoints/databricks-gpt-5/invocations"},
                   "https://example.cloud.databricks.com/serving-endpoints/databricks-gpt-5/invocations",
                   {"authorization": "Bearer dapi0123456789abcdef0123456789abcdef"}, "databricks-gpt-5"),
}


def make_completion(**message: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi there", **message}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 3,
                      "prompt_tokens_details": {"cached_tokens": 5}}}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "choices": choices, **({"usage": usage} if usage else {})}


def sse(chunks: list[Any]) -> bytes:
    return b"".join(b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n\n" for c in chunks)


def make_client(make_app: Any, provider: str) -> Any:
    settings = PROVIDERS[provider][0]
    return make_app(model_provider=provider, fallback_enabled=False, **settings).test_client()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_json_answer_per_provider(make_app: Any, provider: str) -> None:
    _, url, auth, model = PROVIDERS[provider]
    client = make_client(make_app, provider)
    with responses.RequestsMock() as mocked:
        mocked.post(url, json=make_completion())
        response = client.post("/v1/messages", json=make_request(system="Be brief."))
        sent = mocked.calls[0].request
    assert response.status_code == 200
    message = response.get_json()
    assert message["model"] == "claude-sonnet-4-5-20250929"
    assert message["content"] == [{"type": "text", "text": "Hi there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 15, "output_tokens": 3, "cache_read_input_tokens": 5}
    assert response.headers["X-Lynkr-Model"] == model
    for name, value in auth.items():
        assert sent.headers[name] == value
    body = json.loads(sent.body)
    assert body["model"] == model
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert "stream" not in body


def test_stream_with_tool_call_and_usage_chunk(make_app: Any) -> None:
    client = make_client(make_app, "openai")
    chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Let me check."}),
              chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "Read", "arguments": '{"file_'}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'path": "a.txt"}'}}]}),
              chunk({}, finish="tool_calls"),
              chunk(None, usage={"prompt_tokens": 30, "completion_tokens": 9}), b"[DONE]"]
    tools = [{"name": "Read", "description": "read", "input_schema": {"type": "object"}}]
    with responses.RequestsMock() as mocked:
        mocked.post(PROVIDERS["openai"][1], body=sse(chunks), content_type="text/event-stream")
        response = client.post("/v1/messages", json=make_request(stream=True, tools=tools))
        data = response.get_data()
        sent = json.loads(mocked.calls[0].request.body)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    events = [e.json() for e in SSEDecoder().feed(data)]
    validate_stream(events)
    assert [e["type"] for e in events if e["type"].startswith("content_block_start")] == ["content_block_start"] * 2
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["input_tokens"] == 30
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": "call_1", "name": "Read", "input": {}}


def test_context_overflow_becomes_anthropic_wording(make_app: Any) -> None:
    client = make_client(make_app, "openai")
    error = {"error": {"code": "context_length_exceeded", "type": "invalid_request_error",
                       "message": "This model's maximum context length is 128000 tokens. However, your "
                                  "messages resulted in 130512 tokens. Please reduce the length."}}
    with responses.RequestsMock() as mocked:
        mocked.post(PROVIDERS["openai"][1], status=400, json=error)
        response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error",
                                            "message": "prompt is too long: 130512 tokens > 128000 maximum"}


def test_openrouter_error_body_with_status_200(make_app: Any) -> None:
    client = make_client(make_app, "openrouter")
    with responses.RequestsMock() as mocked:
        mocked.post(PROVIDERS["openrouter"][1], json={"error": {"code": 429, "message": "Rate limited upstream"}})
        response = client.post("/v1/messages", json=make_request())
    assert response.status_code == 429
    assert response.get_json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(("send_user_id", "expected"), [(True, True), (False, False)])
def test_send_user_id_switches_the_user_field(make_app: Any, send_user_id: bool, expected: bool) -> None:
    client = make_app(model_provider="openai", fallback_enabled=False, send_user_id=send_user_id,
                      **PROVIDERS["openai"][0]).test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(PROVIDERS["openai"][1], json=make_completion())
        response = client.post("/v1/messages", json=make_request(metadata={"user_id": "user_abc_session_1"}))
        sent = json.loads(mocked.calls[0].request.body)
    assert response.status_code == 200
    user = hashlib.sha256(b"user_abc_session_1").hexdigest()
    assert sent.get("user") == (user if expected else None)


# Claude Code's Read and WebFetch schemas, cut down: "$schema" at the top, keywords further in.
CLAUDE_CODE_TOOLS = [
    {"name": "Read", "description": "Read a file", "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
        "required": ["file_path"],
        "properties": {"file_path": {"type": "string"}, "limit": {"type": "number", "exclusiveMinimum": 0}}}},
    {"name": "WebFetch", "description": "Fetch a URL", "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"},
                       "status": {"anyOf": [{"type": "string", "enum": ["open"]},
                                            {"type": "string", "const": "deleted"}]}}}},
]


def upstream_parameters(client: Any, url: str) -> list[dict[str, Any]]:
    """The ``parameters`` of each function the provider sent upstream for ``CLAUDE_CODE_TOOLS``."""
    with responses.RequestsMock() as mocked:
        mocked.post(url, json=make_completion())
        response = client.post("/v1/messages", json=make_request(tools=CLAUDE_CODE_TOOLS))
        sent = json.loads(mocked.calls[0].request.body)
    assert response.status_code == 200
    return [tool["function"]["parameters"] for tool in sent["tools"]]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_strips_schema_annotation(make_app: Any, provider: str) -> None:
    read, fetch = upstream_parameters(make_client(make_app, provider), PROVIDERS[provider][1])
    expected_read = {key: value for key, value in CLAUDE_CODE_TOOLS[0]["input_schema"].items() if key != "$schema"}
    expected_fetch = {key: value for key, value in CLAUDE_CODE_TOOLS[1]["input_schema"].items() if key != "$schema"}
    assert (read, fetch) == (expected_read, expected_fetch)


def test_gemini_models_lose_the_keywords_google_rejects(make_app: Any) -> None:
    settings = {**PROVIDERS["openrouter"][0], "openrouter_model": "google/gemini-2.5-pro"}
    client = make_app(model_provider="openrouter", fallback_enabled=False, **settings).test_client()
    read, fetch = upstream_parameters(client, PROVIDERS["openrouter"][1])
    assert read == {"type": "object", "required": ["file_path"],
                    "properties": {"file_path": {"type": "string"}, "limit": {"type": "number"}}}
    assert fetch == {"type": "object", "properties": {
        "url": {"type": "string"}, "status": {"anyOf": [{"type": "string", "enum": ["open"]}, {"type": "string"}]}}}


def test_databricks_api_format_openai_selects_chat_completions(make_app: Any) -> None:
    # Databricks' OpenAI-compatible route: the endpoint is named by the body's model, not by the path.
    path = "/serving-endpoints/chat/completions"
    url = "https://example.cloud.databricks.com" + path
    client = make_app(model_provider="databricks", fallback_enabled=False, databricks_api_format="openai",
                      databricks_endpoint_path=path, model_default="databricks-gpt-5").test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(url, json=make_completion())
        response = client.post("/v1/messages", json=make_request(system="Be brief."))
        sent = json.loads(mocked.calls[0].request.body)
    assert response.status_code == 200
    assert response.get_json()["content"] == [{"type": "text", "text": "Hi there"}]
    assert sent == {"model": "databricks-gpt-5", "max_completion_tokens": 1024,
                    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}


def big_conversation() -> dict[str, Any]:
    """About 500 KB of conversation (~150k estimated tokens)."""
    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n} " + "lorem ipsum " * 420}
             for n in range(99)]
    return make_request(messages=turns)


def test_an_unknown_models_long_prompt_goes_upstream_and_its_overflow_is_mapped(make_app: Any) -> None:
    client = make_app(model_provider="openai-compatible", fallback_enabled=False,
                      openai_compatible_endpoint="http://127.0.0.1:8000/v1",
                      openai_compatible_model="my-finetune-7b", prompt_cache_enabled=False).test_client()
    body = big_conversation()
    assert len(json.dumps(body)) > 500_000
    with responses.RequestsMock() as mocked:
        mocked.post("http://127.0.0.1:8000/v1/chat/completions", json=make_completion())
        assert client.post("/v1/messages", json=body).status_code == 200
        mocked.post("http://127.0.0.1:8000/v1/chat/completions", status=400, json={"error": {
            "message": "the request exceeds the available context size (160123 tokens), try increasing it",
            "type": "exceed_context_size_error", "n_prompt_tokens": 160123, "n_ctx": 131072}})
        response = client.post("/v1/messages", json=body)
        assert len(mocked.calls) == 2
    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error",
                                            "message": "prompt is too long: 160123 tokens > 131072 maximum"}


def test_a_known_models_long_prompt_is_refused_locally(make_app: Any) -> None:
    client = make_app(model_provider="openai-compatible", fallback_enabled=False,
                      openai_compatible_endpoint="http://127.0.0.1:8000/v1",
                      openai_compatible_model="gpt-4o").test_client()
    with responses.RequestsMock() as mocked:
        response = client.post("/v1/messages", json=big_conversation())
        assert len(mocked.calls) == 0
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert message.startswith("prompt is too long: ")
    assert message.endswith(" tokens > 128000 maximum")
