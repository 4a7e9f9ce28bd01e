"""The capability table: first matching pattern wins, overrides change only what they name, host profiles."""

from __future__ import annotations

import pytest

from app.providers.capabilities import CORE_FIELDS, CapabilityTable, HostProfile, ModelCapabilities


@pytest.mark.parametrize(("model", "context", "output", "param"), [
    ("databricks-claude-opus-4-1", 200_000, 32_000, "max_tokens"),
    ("claude-opus-4", 200_000, 32_000, "max_tokens"),
    ("databricks-claude-opus-4-5", 200_000, 64_000, "max_tokens"),
    ("Claude-Sonnet-4-5-20250929", 200_000, 64_000, "max_tokens"),
    ("claude-3-5-haiku", 200_000, 8_192, "max_tokens"),
    ("claude-instant", 200_000, 32_000, "max_tokens"),
    ("gpt-5-mini", 400_000, 128_000, "max_completion_tokens"),
    ("o3-mini", 200_000, 100_000, "max_completion_tokens"),
    ("gpt-4o-mini", 128_000, 16_384, "max_tokens"),
    ("openai/gpt-oss-120b", 131_072, 32_768, "max_tokens"),
    ("some-unknown-model", None, 16_384, "max_tokens"),
])
def test_limits_follow_the_first_matching_pattern(model: str, context: int | None, output: int, param: str) -> None:
    caps = CapabilityTable().model(model)
    assert (caps.context_window, caps.max_output_tokens, caps.max_tokens_param) == (context, output, param)


def test_quirks_of_a_few_families() -> None:
    table = CapabilityTable()
    assert table.model("deepseek-reasoner") == ModelCapabilities(
        context_window=128_000, max_output_tokens=64_000, vision=False, reasoning_replay=True,
        accepts_temperature=False)
    assert table.model("qwen2.5-coder:7b").text_tool_calls is True
    assert table.model("llama3.1:8b").vision is False
    assert table.model("gpt-5").accepts_temperature is False
    assert table.model("gpt-4.1").pdf_input is True
    assert table.model("gpt-4o").reasoning_effort is False
    assert table.model("xo3") == ModelCapabilities()  # "o[134]*" is anchored at the start


def test_an_override_changes_only_the_fields_it_names() -> None:
    table = CapabilityTable({"*Sonnet*": {"max_output_tokens": 8_000}, "my-model": {"vision": False}})
    assert table.model("claude-sonnet-4-5") == ModelCapabilities(
        context_window=200_000, max_output_tokens=8_000, pdf_input=True)
    assert table.model("my-model") == ModelCapabilities(vision=False)
    assert table.model("claude-opus-4-5").max_output_tokens == 64_000


def test_an_override_with_an_unknown_field_is_refused_by_pattern() -> None:
    with pytest.raises(ValueError, match=r"^model 'gpt-\*': .*unexpected keyword argument 'colour'"):
        CapabilityTable({"gpt-*": {"colour": "blue"}})


def test_host_profiles() -> None:
    table = CapabilityTable()
    databricks = table.host("databricks")
    assert (databricks.system_turns, databricks.adaptive_thinking, databricks.deferred_tools) == (False, False, False)
    assert databricks.fields == CORE_FIELDS
    assert "context_management" in (table.host("azure-anthropic").fields or ())
    assert table.host("anthropic") == HostProfile(name="anthropic")
    assert table.host("elsewhere") == HostProfile(name="elsewhere")


def test_a_host_override_merges_and_takes_lists() -> None:
    table = CapabilityTable(host_overrides={
        "databricks": {"system_turns": True, "betas": ["b1", "b2"]},
        "new-host": {"fields": ["model", "messages"]},
    })
    databricks = table.host("databricks")
    assert databricks.system_turns is True
    assert databricks.betas == frozenset({"b1", "b2"})
    assert databricks.fields == CORE_FIELDS
    assert table.host("new-host") == HostProfile(name="new-host", fields=frozenset({"model", "messages"}))
    assert CapabilityTable(host_overrides={"databricks": {"betas": None}}).host("databricks").betas is None
