"""Claude names map to the configured model; other names pass through."""

from __future__ import annotations

import pytest

from app.routing import is_claude_model, resolve_model


@pytest.mark.parametrize(("requested", "expected"), [
    ("claude-sonnet-4-5-20250929", "databricks-claude-sonnet-4-5"),
    ("claude-opus-5-5", "databricks-claude-opus-4-5"),
    ("claude-haiku-4-5", "databricks-claude-haiku-4-5"),
    ("my-sonnet-model", "databricks-claude-sonnet-4-5"),
    ("claude-instant", "databricks-claude-sonnet-4-5"),
    ("gpt-5-mini", "gpt-5-mini"),
    ("deepseek-reasoner", "deepseek-reasoner"),
])
def test_resolve_model(requested: str, expected: str) -> None:
    aliases = "haiku=databricks-claude-haiku-4-5, opus=databricks-claude-opus-4-5"
    assert resolve_model(requested, "databricks-claude-sonnet-4-5", aliases) == expected


def test_exact_alias_beats_tier() -> None:
    assert resolve_model("claude-opus-5-5", "d", "claude-opus-5-5=special,opus=o") == "special"


def test_is_claude_model() -> None:
    assert is_claude_model("Claude-3-Opus")
    assert not is_claude_model("llama3.1:8b")
