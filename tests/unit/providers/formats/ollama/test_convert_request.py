"""Request details of the Ollama format that the golden cases do not pin down."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.capabilities import CapabilityTable, ModelCapabilities
from app.providers.formats.ollama.convert import dropped_notes, to_upstream, wants_thinking, wants_tools
from app.providers.formats.openai_chat.messages import MISSING_RESULT

READ = {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
TABLE = CapabilityTable()


def make_request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}], **fields}


def make_body(request: dict[str, Any], model: str = "qwen2.5-coder:7b", **options: Any) -> dict[str, Any]:
    return to_upstream(request, model=model, caps=TABLE.model(model), stream=False, **options)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, ["tool_choice any dropped: Ollama cannot force a tool call, the model may answer in text"]),
        ({"type": "tool", "name": "Read"}, ["tool_choice 'Read' dropped: Ollama cannot force a tool call, "
                                            "the model may answer in text or call another tool"]),
        ({"type": "auto"}, []),
        ({"type": "none"}, []),
        (None, []),
    ],
)
def test_dropped_notes_name_the_forced_tool_choice(choice: Any, expected: list[str]) -> None:
    assert dropped_notes(make_request(tools=[READ], tool_choice=choice)) == expected


def test_dropped_notes_are_silent_without_tools() -> None:
    assert dropped_notes(make_request(tool_choice={"type": "any"})) == []
    server_only = [{"type": "web_search_20250305", "name": "web_search"}]
    assert dropped_notes(make_request(tools=server_only, tool_choice={"type": "any"})) == []


def test_wants_tools_and_thinking() -> None:
    assert wants_tools(make_request(tools=[READ]))
    assert not wants_tools(make_request(tools=[READ], tool_choice={"type": "none"}))
    assert not wants_tools(make_request(tools=[{**READ, "name": "ToolSearch"}]))
    assert wants_thinking(make_request(thinking={"type": "adaptive"}))
    assert wants_thinking(make_request(thinking={"type": "enabled", "budget_tokens": 1024}))
    assert not wants_thinking(make_request(thinking={"type": "disabled"}))
    assert not wants_thinking(make_request())


@pytest.mark.parametrize(
    ("model", "fields", "can_think", "think"),
    [
        ("qwen3:8b", {"thinking": {"type": "adaptive"}}, True, True),
        ("qwen3:8b", {"thinking": {"type": "disabled"}}, True, False),
        ("qwen2.5-coder:7b", {"thinking": {"type": "disabled"}}, False, False),  # false is always accepted
        ("qwen2.5-coder:7b", {"thinking": {"type": "enabled", "budget_tokens": 2048}}, False, None),
        ("qwen3:8b", {}, True, None),
        ("gpt-oss:20b", {"thinking": {"type": "enabled", "budget_tokens": 2048}}, True, "low"),
        ("gpt-oss:20b", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}}, True, "medium"),
        ("gpt-oss:20b", {"thinking": {"type": "adaptive"}}, True, True),
        ("gpt-oss:20b", {"thinking": {"type": "disabled"}}, True, None),  # gpt-oss cannot stop thinking
    ],
)
def test_think_parameter(model: str, fields: dict[str, Any], can_think: bool, think: Any) -> None:
    body = make_body(make_request(**fields), model, can_think=can_think)
    assert body.get("think") == think
    assert ("think" in body) is (think is not None)


@pytest.mark.parametrize(
    ("value", "sent"), [("5m", "5m"), ("300", 300), ("-1", -1), (" 0 ", 0), ("", None), (None, None)]
)
def test_keep_alive(value: Any, sent: Any) -> None:
    assert make_body(make_request(), keep_alive=value).get("keep_alive") == sent


def test_stream_is_always_explicit() -> None:
    # Ollama streams unless told otherwise, so a JSON request must say stream: false.
    assert make_body(make_request())["stream"] is False
    request = make_request()
    assert to_upstream(request, model="m", caps=ModelCapabilities(), stream=True)["stream"] is True


def test_num_predict_defaults_to_the_model_limit() -> None:
    request = make_request()
    del request["max_tokens"]
    assert make_body(request)["options"] == {"num_predict": 8192}


def test_sampling_left_out_for_models_without_temperature() -> None:
    caps = ModelCapabilities(accepts_temperature=False)
    body = to_upstream(make_request(temperature=0.5, top_k=3, stop_sequences=["x"]), model="m", caps=caps,
                       stream=False)
    assert body["options"] == {"num_predict": 1000, "stop": ["x"]}


def test_model_without_tool_support_gets_no_tools() -> None:
    caps = ModelCapabilities(tools=False)
    assert "tools" not in to_upstream(make_request(tools=[READ]), model="m", caps=caps, stream=False)


def test_tool_without_description_and_schema_type() -> None:
    tool = {"name": "Ping", "input_schema": {"properties": {}}, "defer_loading": True, "cache_control": {}}
    body = make_body(make_request(tools=[tool]))
    assert body["tools"] == [{"type": "function", "function": {"name": "Ping", "parameters": {
        "properties": {}, "type": "object"}}}]


def test_call_without_result_gets_a_placeholder_and_orphan_result_becomes_text() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "stray"},
                                     {"type": "text", "text": "and?"}]},
    ]
    body = make_body(make_request(messages=messages, tools=[READ]))
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "Read", "arguments": {}}}]},
        {"role": "tool", "content": MISSING_RESULT, "tool_name": "Read"},
        {"role": "user", "content": "[result of tool call toolu_9]\nstray"},
        {"role": "user", "content": "and?"},
    ]


def test_thinking_only_turns_and_redacted_thinking() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "xx"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}]},
        {"role": "user", "content": "again"},
    ]
    body = make_body(make_request(messages=messages))
    assert body["messages"] == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "thinking": "hmm"},
        {"role": "user", "content": "again"},
    ]


def test_documents_become_text() -> None:
    content = [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        {"type": "image", "source": {"type": "file", "file_id": "f1"}},
    ]
    caps = ModelCapabilities(pdf_input=True)
    body = to_upstream(make_request(messages=[{"role": "user", "content": content}]), model="m", caps=caps,
                       stream=False)
    assert body["messages"] == [{"role": "user", "content": "notes\n\n[PDF document omitted: this model cannot read "
                                 "files]\n\n[image omitted: unsupported image source]"}]


def test_a_structured_output_becomes_ollamas_format() -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    body = make_body(make_request(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert body["format"] == schema
    assert "format" not in make_body(make_request(output_config={"effort": "low"}))
