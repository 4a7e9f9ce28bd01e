"""Claude names map to the configured model; other names pass through."""

from __future__ import annotations

import re

import pytest

from app.config import Config
from app.routing import Route, choose, is_claude_model, parse_rules, resolve_model, rule_route


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


def make_routing_config(**overrides: object) -> Config:
    return Config(**overrides)


def names(routes: list[Route]) -> list[str]:
    return [r.provider for r in routes]


def tools(n: int) -> dict:
    return {"tools": [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(n)]}


EVERYTHING = {"databricks", "ollama", "openrouter", "openai", "azure-openai"}


def test_static_routes_to_model_provider_then_fallback() -> None:
    config = make_routing_config(model_provider="openai", fallback_provider="databricks")
    routes = choose({}, config, EVERYTHING.__contains__)
    assert routes == [Route("openai", "static"), Route("databricks", "fallback")]
    assert names(choose({}, make_routing_config(model_provider="openai", fallback_enabled=False),
                        EVERYTHING.__contains__)) == ["openai"]


def test_unconfigured_fallbacks_are_left_out_but_the_first_choice_stays() -> None:
    config = make_routing_config(model_provider="openai", fallback_provider="databricks")
    assert names(choose({}, config, lambda name: False)) == ["openai"]


@pytest.mark.parametrize(("count", "first", "reason"), [
    (0, "ollama", "tools_under_ollama_limit"),
    (2, "ollama", "tools_under_ollama_limit"),
    (3, "openrouter", "tools_under_cloud_limit"),
    (14, "openrouter", "tools_under_cloud_limit"),
    (15, "databricks", "tools_over_cloud_limit"),
    (40, "databricks", "tools_over_cloud_limit"),
])
def test_hybrid_tiers_at_every_edge(count: int, first: str, reason: str) -> None:
    config = make_routing_config(prefer_ollama=True)
    routes = choose(tools(count), config, EVERYTHING.__contains__)
    assert (routes[0].provider, routes[0].reason) == (first, reason)
    assert routes[-1].provider == "databricks"


def test_hybrid_cloud_tier_takes_the_first_configured() -> None:
    config = make_routing_config(prefer_ollama=True)
    routes = choose(tools(5), config, {"azure-openai", "databricks"}.__contains__)
    assert names(routes) == ["azure-openai", "databricks"]


def test_ollama_only_mode() -> None:
    config = make_routing_config(prefer_ollama=True, fallback_enabled=False)
    assert names(choose(tools(1), config, EVERYTHING.__contains__)) == ["ollama"]


def test_rules_parse_and_match_in_order() -> None:
    rules = parse_rules([
        {"if": {"model": "haiku"}, "then": "ollama:qwen2.5-coder:7b"},
        {"if": {"thinking": True, "min_input_tokens": 1000}, "then": "databricks"},
        {"if": {"images": True}, "then": "openai:gpt-4o"},
    ], frozenset(EVERYTHING))
    assert rule_route(rules, {"model": "claude-haiku-4-5"}, 10, False) == Route("ollama", "rule:1", "qwen2.5-coder:7b")
    assert rule_route(rules, {"model": "claude-opus", "thinking": {"type": "adaptive"}}, 5000, False) == Route(
        "databricks", "rule:2", None)
    assert rule_route(rules, {"model": "claude-opus", "thinking": {"type": "adaptive"}}, 10, False) is None
    assert rule_route(rules, {"model": "x"}, 10, True) == Route("openai", "rule:3", "gpt-4o")


@pytest.mark.parametrize(("raw", "wording"), [
    ({"if": {}}, "JSON list"),
    ([{"if": {"model": "haiku"}}], "rule 1 needs"),
    ([{"if": {"colour": "red"}, "then": "openai"}], "unknown conditions ['colour']"),
    ([{"if": {}, "then": "bedrock:x"}], "unknown provider 'bedrock'"),
])
def test_bad_rules_say_what_is_wrong(raw: object, wording: str) -> None:
    with pytest.raises(ValueError, match=re.escape(wording)):
        parse_rules(raw, frozenset(EVERYTHING))
