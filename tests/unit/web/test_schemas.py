"""Ingress validation: parsing with a depth cap, the type of every field read, leniency for the rest."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.errors import InvalidRequestError
from app.web.schemas import (
    MAX_JSON_DEPTH,
    adopt_seed_shapes,
    json_depth,
    parse_json,
    validate_count_tokens_request,
    validate_messages_request,
)


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 100,
                             "messages": [{"role": "user", "content": "hi"}]}
    value.update(overrides)
    return value


def user(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def problem(value: Any) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        validate_messages_request(value)
    return caught.value.message


@pytest.mark.parametrize(("value", "depth"), [
    (1, 0), ("x", 0), ([], 1), ({}, 1), ({"a": [1, {"b": []}]}, 4), (nested_list(300), MAX_JSON_DEPTH + 1),
])
def test_json_depth_counts_levels_and_stops_past_the_cap(value: Any, depth: int) -> None:
    assert json_depth(value, MAX_JSON_DEPTH) == depth


def test_parse_json_takes_the_deepest_allowed_body_and_refuses_one_level_more() -> None:
    deepest = {"model": "m", "metadata": {"x": nested_list(MAX_JSON_DEPTH - 2)}}
    assert parse_json(orjson.dumps(deepest)) == deepest
    too_deep = {"model": "m", "metadata": {"x": nested_list(MAX_JSON_DEPTH - 1)}}
    with pytest.raises(InvalidRequestError, match=f"^Request body nests deeper than {MAX_JSON_DEPTH} levels.$"):
        parse_json(orjson.dumps(too_deep))


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b'"\\ud800"', b"1e400", b"\xff"])
def test_parse_json_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError, match=r"^Request body is not valid JSON: "):
        parse_json(raw)


def test_claude_code_shapes_and_unknown_fields_pass_as_sent() -> None:
    request = body(
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[*user(
            {"type": "text", "text": "look", "citations": None, "brand_new": {"x": 1}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "d"}]},
             "title": None},
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
             "content": [{"type": "tool_reference", "tool_name": "Read"}]},
            {"type": "a_block_from_next_month", "anything": [1, 2]},
        ), {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
        ]}],
        tools=[{"name": "Read", "description": "reads", "input_schema": {"type": "object"}, "defer_loading": True},
               {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 2048},
        metadata={"user_id": "u1"}, output_config={"effort": "high", "format": None},
        context_management={"edits": []}, temperature=1, top_p=0.9, top_k=5, stop_sequences=["END"],
        stream=True, a_field_from_next_month={"x": 1},
    )
    assert validate_messages_request(request) is request


@pytest.mark.parametrize(("overrides", "message"), [
    ({"thinking": {"type": "enabled", "budget_tokens": "lots"}}, "thinking.budget_tokens: Not a valid integer."),
    ({"thinking": {"budget_tokens": 1}}, "thinking.type: Missing data for required field."),
    ({"metadata": "x"}, "metadata: must be an object"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id: Not a valid string."),
    ({"messages": user({"type": "image", "source": "x"})}, "messages.0.content.0.source: must be an object"),
    ({"messages": user({"type": "image", "source": {"type": "base64", "data": 1}})},
     "messages.0.content.0.source.data: Not a valid string."),
    ({"messages": user({"type": "document", "source": {"type": "content", "content": 3}})},
     "messages.0.content.0.source.content: must be a string or a list of content blocks"),
    ({"messages": user({"type": "text", "text": ["a"]})}, "messages.0.content.0.text: Not a valid string."),
    ({"messages": user({"type": 7})}, "messages.0.content.0.type: Not a valid string."),
    ({"messages": user("text")}, "messages.0.content.0: must be a content block object"),
    ({"messages": user({"type": "tool_result", "tool_use_id": "t", "content": [1]})},
     "messages.0.content.0.content.0: must be a content block object"),
    ({"messages": user({"type": "tool_result", "tool_use_id": "t", "content": {"a": 1}})},
     "messages.0.content.0.content: must be a string or a list of content blocks"),
    ({"messages": user({"type": "tool_use", "id": "t", "name": "n", "input": "x"})},
     "messages.0.content.0.input: Not a valid mapping type."),
    ({"messages": user({"type": "thinking", "thinking": None})},
     "messages.0.content.0.thinking: Field may not be null."),
    ({"messages": user({"type": "tool_reference", "tool_name": 1})},
     "messages.0.content.0.tool_name: Not a valid string."),
    ({"messages": user({"type": "search_result", "content": "flat"})},
     "messages.0.content.0.content: must be a list of content blocks"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role: must be user or assistant"),
    ({"messages": [{"role": "user"}]}, "messages.0.content: Missing data for required field."),
    ({"messages": [{"role": "user", "content": None}]},
     "messages.0.content: must be a string or a list of content blocks"),
    ({"messages": ["hi"]}, "messages.0: must be an object"),
    ({"system": 5}, "system: must be a string or a list of content blocks"),
    ({"system": [{"type": "text", "text": 5}]}, "system.0.text: Not a valid string."),
    ({"tools": ["x"]}, "tools.0: must be an object"),
    ({"tools": [{"name": "t", "input_schema": []}]}, "tools.0.input_schema: Not a valid mapping type."),
    ({"tools": [{"input_schema": {}}]}, "tools.0.name: Missing data for required field."),
    ({"tool_choice": "auto"}, "tool_choice: must be an object"),
    ({"tool_choice": {"type": "tool", "name": 3}}, "tool_choice.name: Not a valid string."),
    ({"output_config": {"effort": ["high"]}}, "output_config.effort: Not a valid string."),
    ({"stop_sequences": "END"}, "stop_sequences: Not a valid list."),
    ({"stop_sequences": [1]}, "stop_sequences.0: Not a valid string."),
    ({"temperature": "0.5"}, "temperature: Not a valid number."),
    ({"top_k": True}, "top_k: Not a valid number."),
    ({"max_tokens": 1.5}, "max_tokens: Not a valid integer."),
    ({"max_tokens": 0}, "max_tokens: Must be greater than or equal to 1."),
    ({"model": ""}, "model: Length must be between 1 and 128."),
    ({"model": "m" * 129}, "model: Length must be between 1 and 128."),
    ({"context_management": "x"}, "context_management: Not a valid mapping type."),
])
def test_a_wrong_type_where_the_gateway_reads_is_a_400_naming_the_field(overrides: dict[str, Any],
                                                                        message: str) -> None:
    assert problem(body(**overrides)) == message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert problem([1]) == "Request body must be a JSON object."


def test_count_tokens_needs_no_max_tokens_but_checks_the_same_shapes() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert validate_count_tokens_request(request) is request
    with pytest.raises(InvalidRequestError, match=r"^metadata: must be an object$"):
        validate_count_tokens_request({**request, "metadata": "x"})


def test_seed_shapes_get_a_default_max_tokens_and_an_anthropic_tool_choice() -> None:
    asked: list[str] = []

    def limit(model: str) -> int:
        asked.append(model)
        return 64000

    seed = {"model": "claude-sonnet-4-5", "messages": [],
            "tool_choice": {"type": "function", "function": {"name": "Read"}}}
    assert adopt_seed_shapes(seed, limit) == {"model": "claude-sonnet-4-5", "messages": [], "max_tokens": 64000,
                                               "tool_choice": {"type": "tool", "name": "Read"}}
    assert asked == ["claude-sonnet-4-5"]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
    ("sometimes", "sometimes"), ({"type": "function", "function": "Read"}, {"type": "function", "function": "Read"}),
    ({"type": "tool", "name": "Read"}, {"type": "tool", "name": "Read"}),
])
def test_openai_tool_choice_forms(choice: Any, expected: Any) -> None:
    assert adopt_seed_shapes(body(tool_choice=choice), lambda model: 1)["tool_choice"] == expected


@pytest.mark.parametrize("value", [[1], "x", {"model": 5, "messages": []}, {"max_tokens": None, "model": "m"}])
def test_seed_shapes_leave_other_bodies_to_validation(value: Any) -> None:
    before = orjson.dumps(value)
    assert adopt_seed_shapes(value, lambda model: pytest.fail("no default wanted")) is value
    assert orjson.dumps(value) == before
