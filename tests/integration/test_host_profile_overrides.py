"""Host profiles and the model table through create_app: what a host takes is forwarded untouched,
and HOST_PROFILES / MODEL_CAPABILITIES files change what reaches the upstream.

Requests are recorded Claude Code requests; the upstream is mocked with ``responses`` and the
exact body and ``anthropic-beta`` header it received are asserted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from app.config import ConfigError
from app.providers.capabilities import CORE_FIELDS
from tests.conftest import AZURE_URL, DATABRICKS_URL, load_fixture
from tests.integration.test_messages_anthropic import make_stream_events, sse_body

RECORDED = load_fixture("v2.1.331-default-opus-request1.json")
CLIENT_BETAS = RECORDED["headers"]["anthropic-beta"]
SONNET = "databricks-claude-sonnet-4-5"
FULL_API = {"system_turns": True, "adaptive_thinking": True, "deferred_tools": True, "fields": None, "betas": None}


def settings_file(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def forward(make_app: Any, body: dict[str, Any], url: str = DATABRICKS_URL, **settings: Any) -> tuple[dict, Any]:
    """Send the recorded request (its own headers) through the app; the upstream's body and headers."""
    client = make_app(**settings).test_client()
    headers = {k: v for k, v in RECORDED["headers"].items() if k.lower() not in ("host", "content-length")}
    with responses.RequestsMock() as mocked:
        mocked.post(url, body=sse_body(make_stream_events()), content_type="text/event-stream")
        # Raw JSON: the test client's json= would sort the keys, hiding the order the upstream gets.
        response = client.post("/v1/messages?beta=true", data=json.dumps(body), headers=headers)
        assert response.status_code == 200, response.get_data()
        response.get_data()
        request = mocked.calls[0].request
    return json.loads(request.body), request.headers


def test_a_host_that_takes_everything_gets_the_request_untouched(make_app: Any, tmp_path: Path) -> None:
    body = dict(RECORDED["body"], max_tokens=64_000)  # within the model's limit, so nothing is clamped
    assert body["thinking"] == {"type": "adaptive", "display": "updates"}
    assert {m["role"] for m in body["messages"]} == {"user", "system"}
    hosts = settings_file(tmp_path, "hosts.json", {"databricks": FULL_API})
    sent, headers = forward(make_app, body, host_profiles_file=hosts)
    assert sent == {**body, "model": SONNET}
    assert list(sent) == list(body)
    assert headers["anthropic-beta"] == CLIENT_BETAS
    assert not any(name.lower().startswith(("x-stainless", "x-app")) for name in headers)


def test_azure_forwards_context_management_untouched_and_drops_what_it_does_not_take(make_app: Any) -> None:
    body = RECORDED["body"]
    user, system_turn = body["messages"]
    sent, headers = forward(make_app, body, url=AZURE_URL, model_provider="azure-anthropic")
    assert sent == {
        "model": "claude-sonnet-4-5", "max_tokens": 64_000, "stream": True, "metadata": body["metadata"],
        "context_management": body["context_management"],
        "system": body["system"] + system_turn["content"], "messages": [user],
        "tools": [{k: v for k, v in t.items() if k != "defer_loading"} for t in body["tools"]],
        "thinking": {"type": "enabled", "budget_tokens": 10_000},
    }
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,context-management-2025-06-27"


def test_a_partial_host_override_changes_only_what_it_names(make_app: Any, tmp_path: Path) -> None:
    hosts = settings_file(tmp_path, "hosts.json", {"databricks": {"adaptive_thinking": True}})
    sent, headers = forward(make_app, RECORDED["body"], host_profiles_file=hosts)
    assert sent["thinking"] == {"type": "adaptive", "display": "updates"}
    assert set(sent) <= CORE_FIELDS
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert not any("defer_loading" in t for t in sent["tools"])
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"


def test_a_host_override_sets_the_fields_and_betas_forwarded(make_app: Any, tmp_path: Path) -> None:
    hosts = settings_file(tmp_path, "hosts.json", {"databricks": {
        "fields": [*CORE_FIELDS, "output_config"], "betas": ["effort-2025-11-24", "context-management-2025-06-27"]}})
    sent, headers = forward(make_app, RECORDED["body"], host_profiles_file=hosts)
    assert sent["output_config"] == {"effort": "medium"}
    assert "context_management" not in sent
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 10_000}
    assert headers["anthropic-beta"] == "context-management-2025-06-27,effort-2025-11-24"


@pytest.mark.parametrize(("models", "max_tokens", "budget"), [
    (None, 64_000, 10_000),
    ({"DATABRICKS-CLAUDE-SONNET-*": {"max_output_tokens": 8_000, "context_window": 200_000}}, 8_000, 7_999),
    ({"*claude-sonnet-4-5": {"max_output_tokens": 128_000, "context_window": 200_000}}, 128_000, 10_000),
], ids=["built-in", "lower-limit", "higher-limit"])
def test_a_model_override_sets_the_output_limit(make_app: Any, tmp_path: Path, models: Any, max_tokens: int,
                                                budget: int) -> None:
    settings = {"model_capabilities_file": settings_file(tmp_path, "models.json", models)} if models else {}
    sent, _ = forward(make_app, RECORDED["body"], **settings)
    assert RECORDED["body"]["max_tokens"] == 128_000
    assert (sent["max_tokens"], sent["thinking"]) == (max_tokens, {"type": "enabled", "budget_tokens": budget})


def test_a_model_override_changes_only_the_fields_it_names(make_app: Any, tmp_path: Path) -> None:
    models = settings_file(tmp_path, "models.json", {"databricks-claude-sonnet-4-5": {"max_output_tokens": 8_000}})
    table = make_app(model_capabilities_file=models).extensions["lynkr"].capabilities
    caps = table.model("databricks-claude-sonnet-4-5")
    assert (caps.max_output_tokens, caps.context_window, caps.pdf_input) == (8_000, 200_000, True)


@pytest.mark.parametrize(("setting", "content", "wording"), [
    ("host_profiles_file", "{not json", "HOST_PROFILES="),
    ("host_profiles_file", {"databricks": {"adaptive": True}}, "MODEL_CAPABILITIES / HOST_PROFILES could not be used"),
    ("model_capabilities_file", "[1,", "MODEL_CAPABILITIES="),
    ("model_capabilities_file", {"databricks-claude-sonnet-4-5": {"max_output_token": 8_000}},
     "MODEL_CAPABILITIES / HOST_PROFILES could not be used (model 'databricks-claude-sonnet-4-5'"),
])
def test_an_unusable_override_file_stops_create_app(make_app: Any, tmp_path: Path, setting: str, content: Any,
                                                    wording: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(wording)):
        make_app(**{setting: settings_file(tmp_path, "settings.json", content)})


STRUCTURED = {"type": "json_schema", "schema": {"type": "object", "properties": {"title": {"type": "string"}},
                                                "required": ["title"], "additionalProperties": False}}


def test_structured_outputs_reach_a_host_whose_profile_takes_them(make_app: Any, tmp_path: Path) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Title?"}],
            "output_config": {"format": STRUCTURED, "effort": "low"}, "stream": True}
    sent, _ = forward(make_app, body)
    assert "output_config" not in sent  # Databricks' built-in profile does not take them
    hosts = settings_file(tmp_path, "hosts.json", {"databricks": {"output_format": True}})
    sent, _ = forward(make_app, body, host_profiles_file=hosts)
    assert sent["output_config"] == {"format": STRUCTURED}


def test_structured_outputs_become_response_format_for_chat_completions(make_app: Any) -> None:
    client = make_app(model_provider="openai", openai_api_key="sk-test-1234567", fallback_enabled=False).test_client()
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Title?"}],
            "output_config": {"format": STRUCTURED}}
    with responses.RequestsMock() as mocked:
        mocked.post("https://api.openai.com/v1/chat/completions", json={
            "id": "c1", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": '{"title": "Hi"}'}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4}})
        response = client.post("/v1/messages", json=body)
        sent = json.loads(mocked.calls[0].request.body)
    assert response.status_code == 200
    assert response.get_json()["content"] == [{"type": "text", "text": '{"title": "Hi"}'}]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "output",
                                                                            "schema": STRUCTURED["schema"]}}
