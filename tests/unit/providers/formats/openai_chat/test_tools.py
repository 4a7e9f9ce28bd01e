"""Tool names, call ids, schemas and tool_choice for chat-completions upstreams."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.openai_chat.convert import tool_name_map
from app.providers.formats.openai_chat.tools import (
    ANTHROPIC_ID,
    FUNCTION_NAME,
    anthropic_tool_id,
    convert_tool_choice,
    strip_schema,
    upstream_tool_id,
    upstream_tool_name,
)

NAMES = [
    "Read",
    "mcp__github.com__create_issue",
    "mcp__claude_ai_Atlassian_Rovo__searchConfluenceUsingCql_with_a_very_long_suffix",
    "x" * 64,
    "x" * 65,
    "ツール",
    "a b/c:d",
]


@pytest.mark.parametrize("name", NAMES)
def test_upstream_names_are_valid_and_restored(name: str) -> None:
    upstream = upstream_tool_name(name)
    assert FUNCTION_NAME.match(upstream)
    assert upstream_tool_name(name) == upstream
    request = {"tools": [{"name": name, "input_schema": {"type": "object"}}]}
    assert tool_name_map(request)[upstream] == name


def test_valid_names_pass_unchanged() -> None:
    assert upstream_tool_name("mcp__slack__send") == "mcp__slack__send"


def test_names_that_sanitise_alike_stay_distinct() -> None:
    assert upstream_tool_name("a.b") != upstream_tool_name("a:b")


def test_name_map_covers_tools_used_in_history() -> None:
    request = {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "old.tool", "id": "t"}]}]}
    assert tool_name_map(request) == {upstream_tool_name("old.tool"): "old.tool"}


@pytest.mark.parametrize(
    "upstream_id",
    ["call_abc123", "functions.Write:0", "toolu_01A09q90qw90lq917835lq9", "lynkr_looks_encoded", "id with spaces", "é"],
)
def test_call_ids_round_trip(upstream_id: str) -> None:
    anthropic_id = anthropic_tool_id(upstream_id, message_id="msg_1", position=0)
    assert ANTHROPIC_ID.match(anthropic_id)
    assert upstream_tool_id(anthropic_id) == upstream_id


def test_encoded_ids_are_unique_per_message() -> None:
    first = anthropic_tool_id("functions.Read:0", message_id="msg_1", position=0)
    second = anthropic_tool_id("functions.Read:0", message_id="msg_2", position=0)
    assert first != second
    assert upstream_tool_id(first) == upstream_tool_id(second) == "functions.Read:0"


@pytest.mark.parametrize("missing", [None, "", 7])
def test_missing_ids_are_synthesised(missing: Any) -> None:
    made = anthropic_tool_id(missing, message_id="msg_1", position=2)
    assert ANTHROPIC_ID.match(made)
    assert made == anthropic_tool_id(missing, message_id="msg_1", position=2)
    assert made != anthropic_tool_id(missing, message_id="msg_1", position=3)
    assert upstream_tool_id(made) == made


def test_unencoded_ids_pass_back_unchanged() -> None:
    assert upstream_tool_id("lynkr_nohex") == "lynkr_nohex"
    assert upstream_tool_id("toolu_01") == "toolu_01"


def test_schema_keywords_stripped_at_any_depth_but_not_property_names() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "format": {"type": "string", "format": "date"},
            "list": {"type": "array", "items": [{"format": "uri"}]},
            "choice": {"oneOf": [{"type": "string", "format": "email"}], "default": {"format": "kept"}},
        },
        "enum": [{"format": "data"}],
    }
    assert strip_schema(schema, frozenset({"format", "additionalProperties"})) == {
        "type": "object",
        "properties": {
            "format": {"type": "string"},
            "list": {"type": "array", "items": [{}]},
            "choice": {"oneOf": [{"type": "string"}], "default": {"format": "kept"}},
        },
        "enum": [{"format": "data"}],
    }


FUNCTIONS = [{"type": "function", "function": {"name": "Bash", "parameters": {}}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
        ({"type": "tool", "name": "web_search"}, "auto"),
        ({"type": "mystery"}, None),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    assert convert_tool_choice(choice, FUNCTIONS) == expected


def test_no_tool_choice_without_functions() -> None:
    assert convert_tool_choice({"type": "any"}, []) is None
