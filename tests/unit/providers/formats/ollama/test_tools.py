"""Ollama tools: functions offered, deterministic call ids, arguments read or repaired."""

from __future__ import annotations

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.tools import call_parts, convert_tools, printed_call_names, tool_id

CAPS = ModelCapabilities()
READ = {"name": "Read", "description": "Read a file", "input_schema": {"properties": {"p": {"type": "string"}}}}


def test_function_tools_only_with_a_type_added() -> None:
    request = {"tools": [{**READ, "defer_loading": True},
                         {"name": "ToolSearch", "input_schema": {"type": "object"}},
                         {"type": "web_search_20250305", "name": "web_search"},
                         {"name": "Bare", "input_schema": {"type": "object"}}]}
    assert convert_tools(request, CAPS) == [
        {"type": "function", "function": {"name": "Read", "description": "Read a file",
                                          "parameters": {"properties": {"p": {"type": "string"}}, "type": "object"}}},
        {"type": "function", "function": {"name": "Bare", "parameters": {"type": "object"}}},
    ]
    assert READ["input_schema"] == {"properties": {"p": {"type": "string"}}}  # the request is not changed


def test_no_tools_for_tool_choice_none_or_a_model_without_tools() -> None:
    assert convert_tools({"tools": [READ], "tool_choice": {"type": "none"}}, CAPS) == []
    assert convert_tools({"tools": [READ]}, ModelCapabilities(tools=False)) == []
    assert convert_tools({}, CAPS) == []


def test_printed_calls_are_looked_for_only_in_models_that_print_them() -> None:
    printing = ModelCapabilities(text_tool_calls=True)
    assert printed_call_names({"tools": [READ]}, printing) == {"Read": "Read"}
    assert printed_call_names({"tools": [READ]}, CAPS) == {}
    assert printed_call_names({"tools": [READ], "tool_choice": {"type": "none"}}, printing) == {}


def test_call_ids_depend_on_message_and_position_only() -> None:
    assert tool_id("msg_1", 0) == "toolu_a9a52fa53ccdbfbbe333256a"
    assert tool_id("msg_1", 1) == "toolu_9a7a144d95ec96c2b2c5d36f"
    assert tool_id("msg_1", 0) != tool_id("msg_2", 0)


def test_call_parts() -> None:
    assert call_parts({"function": {"name": "Read", "arguments": {"p": "a"}}}) == ("Read", {"p": "a"})
    assert call_parts({"function": {"name": "Read", "arguments": '{"p": "a"'}}) == ("Read", {"p": "a"})
    assert call_parts({"function": {"name": "R", "arguments": "nonsense"}}) == ("R", None)
    assert call_parts({"function": {"name": 5, "arguments": {}}}) == ("", {})
    assert call_parts({}) == ("", None)
    assert call_parts("x") == ("", None)
