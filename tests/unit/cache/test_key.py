"""The prompt cache key: what decides an answer is in it, ids and cache markers are normalised away."""

from __future__ import annotations

import copy
from typing import Any

from app.cache.key import KEY_VERSION, cache_key, canonical_request


def conversation(first_id: str = "toolu_A", second_id: str = "toolu_B") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "stream": True,
        "metadata": {"user_id": "u"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "read both"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": first_id, "name": "Read", "input": {"p": "a"}},
                {"type": "tool_use", "id": second_id, "name": "Read", "input": {"p": "b"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": second_id, "content": [
                    {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]},
                {"type": "tool_result", "tool_use_id": first_id, "content": "A"},
            ]},
        ],
    }


def test_canonical_request_drops_ignored_fields_markers_and_renames_ids() -> None:
    assert canonical_request(conversation(), "databricks", "m1") == {
        "v": KEY_VERSION,
        "provider": "databricks",
        "model": "m1",
        "request": {
            "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief."}],
            "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": "read both"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "id0", "name": "Read", "input": {"p": "a"}},
                    {"type": "tool_use", "id": "id1", "name": "Read", "input": {"p": "b"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "id1", "content": [{"type": "text", "text": "B"}]},
                    {"type": "tool_result", "tool_use_id": "id0", "content": "A"},
                ]},
            ],
        },
    }


def test_canonical_request_leaves_the_request_itself_unchanged() -> None:
    request = conversation()
    before = copy.deepcopy(request)
    canonical_request(request, "p", "m")
    assert request == before


def test_fresh_tool_ids_and_moved_markers_key_the_same() -> None:
    replay = conversation("toolu_X", "toolu_Y")
    replay["model"] = "claude-opus-4"
    replay["stream"] = False
    replay["service_tier"] = "auto"
    del replay["system"][0]["cache_control"]
    key = cache_key(conversation(), "databricks", "m1")
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")
    assert cache_key(replay, "databricks", "m1") == key


def test_swapped_results_are_a_different_conversation() -> None:
    swapped = conversation()
    results = swapped["messages"][2]["content"]
    results[0]["tool_use_id"], results[1]["tool_use_id"] = results[1]["tool_use_id"], results[0]["tool_use_id"]
    assert cache_key(swapped, "p", "m") != cache_key(conversation(), "p", "m")


def test_provider_model_and_unknown_fields_change_the_key() -> None:
    base = cache_key(conversation(), "p", "m")
    assert cache_key(conversation(), "q", "m") != base
    assert cache_key(conversation(), "p", "n") != base
    assert cache_key({**conversation(), "new_field": 1}, "p", "m") != base
    assert cache_key({**conversation(), "max_tokens": 101}, "p", "m") != base


def test_integer_and_float_temperatures_are_one_value_but_booleans_are_not_numbers() -> None:
    as_floats = cache_key({"temperature": 1.0, "top_p": 0.0}, "p", "m")
    assert cache_key({"temperature": 1, "top_p": 0}, "p", "m") == as_floats
    assert canonical_request({"temperature": True}, "p", "m")["request"] == {"temperature": True}


def test_odd_shapes_pass_through() -> None:
    request = {"system": "plain", "messages": ["not a dict", {"role": "user"}, {"role": "user", "content": "x"}],
               "tools": "nope"}
    assert canonical_request(request, "p", "m")["request"] == request
