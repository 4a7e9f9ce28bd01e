"""The tool contract: argument readers that refuse with ToolError, definitions, truncation."""

from __future__ import annotations

from typing import Any

import pytest

from app.tools.base import Tool, ToolError, arg, bool_arg, int_arg, str_arg, truncate


def test_arg_takes_the_first_alias_given() -> None:
    assert arg({"file_path": "a", "path": "b"}, "path", "file_path") == "b"
    assert arg({"file_path": "a", "path": None}, "path", "file_path") == "a"
    assert arg({}, "path", default="x") == "x"
    with pytest.raises(ToolError, match=r"^missing required argument 'path'$"):
        arg({"path": None}, "path", "file_path", required=True)


def test_str_arg() -> None:
    assert str_arg({"q": "x"}, "q") == "x"
    assert str_arg({}, "q", default="d") == "d"
    assert str_arg({}, "q") is None
    with pytest.raises(ToolError, match=r"^argument 'q' must be a string$"):
        str_arg({"q": 3}, "q")


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("12", 12), (0, 0), (None, None)])
def test_int_arg_accepts_numbers_and_numeric_strings(value: Any, expected: int | None) -> None:
    assert int_arg({"n": value}, "n") == expected


@pytest.mark.parametrize(("value", "message"), [
    (True, "argument 'n' must be a whole number"),
    ("ten", "argument 'n' must be a whole number"),
    ([1], "argument 'n' must be a whole number"),
    (-1, "argument 'n' must be at least 0"),
])
def test_int_arg_refusals(value: Any, message: str) -> None:
    with pytest.raises(ToolError) as raised:
        int_arg({"n": value}, "n")
    assert str(raised.value) == message
    assert int_arg({}, "n", default=5, minimum=1) == 5


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("TRUE", True), ("false", False)])
def test_bool_arg(value: Any, expected: bool) -> None:
    assert bool_arg({"b": value}, "b") is expected


@pytest.mark.parametrize("value", ["yes", 1, "tru"])
def test_a_misspelt_flag_is_refused_not_false(value: Any) -> None:
    with pytest.raises(ToolError, match=r"^argument 'b' must be true or false$"):
        bool_arg({"b": value}, "b")
    assert bool_arg({}, "b") is False


def test_truncate_says_how_much_was_left_out() -> None:
    assert truncate("abcdef", 4) == "abcd\n… [truncated: 2 more characters]"
    assert truncate("abcd", 4) == "abcd"
    assert truncate("abcdef", 0) == "abcdef"


def test_the_definition_offered_to_the_model() -> None:
    tool = Tool("Echo", "Say it back", {"type": "object"}, lambda ctx, args: "x", duplicates=("Bash",))
    assert tool.definition() == {"name": "Echo", "description": "Say it back", "input_schema": {"type": "object"}}
