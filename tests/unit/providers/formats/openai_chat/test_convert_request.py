"""Anthropic requests as chat-completions bodies: recorded Claude Code requests and the knobs."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.providers.capabilities import CapabilityTable, ModelCapabilities
from app.providers.formats.openai_chat.convert import ChatDialect, max_tokens, reasoning_effort, to_upstream
from app.providers.formats.openai_chat.messages import text_of
from app.providers.formats.openai_chat.tools import FUNCTION_NAME

FIXTURES = Path(__file__).resolve().parents[6] / "shared" / "fixtures" / "claude-code"
RECORDED = sorted(FIXTURES.glob("*-request*.json"))
FORMATS = Path(__file__).resolve().parents[5] / "app" / "providers" / "formats"
TABLE = CapabilityTable()
OPENAI = ChatDialect(name="openai")


def make_request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_the_recorded_requests_are_there() -> None:
    assert len(RECORDED) >= 16, "shared/fixtures/claude-code must sit beside the repository"


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.name)
@pytest.mark.parametrize("model", ["gpt-5", "deepseek-reasoner", "qwen3-coder", "kimi-k2"])
def test_recorded_claude_code_requests_convert(path: Path, model: str) -> None:
    request = json.loads(path.read_text())["body"]
    body = to_upstream(request, model=model, caps=TABLE.model(model), dialect=OPENAI, stream=True)
    orjson.dumps(body)
    names = [tool["function"]["name"] for tool in body.get("tools", [])]
    assert "ToolSearch" not in names
    assert all(FUNCTION_NAME.match(name) for name in names)
    assert "defer_loading" not in json.dumps(body["tools"])
    assert not {"context_management", "output_config", "thinking", "metadata"} & set(body)
    turns = [text_of(m["content"]) for m in request["messages"] if m["role"] == "system"]
    expected = [text_of(request["system"]), *[text for text in turns if text]]
    assert [m["content"] for m in body["messages"] if m["role"] == "system"] == expected
    assert "signature" not in json.dumps(body["messages"])


def test_streaming_requests_ask_for_usage_and_others_do_not() -> None:
    caps = ModelCapabilities()
    streamed = to_upstream(make_request(), model="m", caps=caps, dialect=OPENAI, stream=True)
    plain = to_upstream(make_request(stream=True), model="m", caps=caps, dialect=OPENAI, stream=False)
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    assert "stream" not in plain
    assert "stream_options" not in plain


@pytest.mark.parametrize(
    ("wanted", "expected"), [(1000, 1000), (200_000, 16_384), (None, 16_384), (0, 16_384), (True, 16_384)]
)
def test_max_tokens_clamped(wanted: Any, expected: int) -> None:
    assert max_tokens({"max_tokens": wanted}, ModelCapabilities()) == expected


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"output_config": {"effort": "max"}}, "high"),
        ({"output_config": {"effort": "medium"}, "thinking": {"type": "enabled", "budget_tokens": 1024}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10_000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31_999}}, "high"),
        ({"thinking": {"type": "enabled"}}, "medium"),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"output_config": {"effort": "unheard-of"}}, None),
        ({}, None),
    ],
)
def test_reasoning_effort(fields: dict[str, Any], effort: str | None) -> None:
    assert reasoning_effort(fields) == effort


def test_reasoning_effort_only_for_models_that_take_it() -> None:
    request = make_request(output_config={"effort": "low"})
    plain = to_upstream(request, model="gpt-4o", caps=TABLE.model("gpt-4o"), dialect=OPENAI, stream=False)
    silent = ChatDialect(name="openai-compatible", reasoning=None)
    quiet = to_upstream(request, model="gpt-5", caps=TABLE.model("gpt-5"), dialect=silent, stream=False)
    assert "reasoning_effort" not in plain
    assert not {"reasoning_effort", "reasoning"} & set(quiet)


def test_parallel_tool_calls_only_when_the_model_has_them() -> None:
    bash = {"name": "Bash", "input_schema": {"type": "object"}}
    request = make_request(tools=[bash], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    caps = ModelCapabilities(parallel_tool_calls=False)
    body = to_upstream(request, model="m", caps=caps, dialect=OPENAI, stream=False)
    assert body["tool_choice"] == "auto"
    assert "parallel_tool_calls" not in body


def test_no_tools_for_models_without_tool_support() -> None:
    request = make_request(tools=[{"name": "Bash", "input_schema": {"type": "object"}}], tool_choice={"type": "any"})
    body = to_upstream(request, model="m", caps=ModelCapabilities(tools=False), dialect=OPENAI, stream=False)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(body)


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "mystery"}],
        [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
        [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}],
        [{"type": "tool_result"}],
        ["not a block", 3, None],
        None,
    ],
)
def test_odd_content_never_crashes(content: Any) -> None:
    request = make_request(messages=[{"role": "user", "content": content}, "junk"])
    for model in ("gpt-4o", "deepseek-chat"):
        orjson.dumps(to_upstream(request, model=model, caps=TABLE.model(model), dialect=OPENAI, stream=False))


@pytest.mark.parametrize("path", sorted(FORMATS.glob("openai_chat/*.py")), ids=lambda path: path.name)
def test_format_modules_are_pure(path: Path) -> None:
    forbidden = {"flask", "requests", "peewee", "app.config"}
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in forbidden or name in forbidden}


SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}


def test_a_structured_output_becomes_a_json_schema_response_format() -> None:
    request = make_request(output_config={"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"})
    body = to_upstream(request, model="gpt-5", caps=TABLE.model("gpt-5"), dialect=OPENAI, stream=False)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
        "additionalProperties": False}}}
    assert body["reasoning_effort"] == "low"  # the rest of output_config still applies


@pytest.mark.parametrize("config", [None, {"effort": "high"}, {"format": {"type": "json_schema"}},
                                    {"format": {"type": "text", "schema": SCHEMA}}, "json"])
def test_no_response_format_without_a_json_schema(config: Any) -> None:
    body = to_upstream(make_request(output_config=config), model="gpt-4o", caps=TABLE.model("gpt-4o"),
                       dialect=OPENAI, stream=False)
    assert "response_format" not in body
