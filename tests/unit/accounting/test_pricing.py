"""The price table: patterns by upstream model, overrides, defaults, unknown prices."""

from __future__ import annotations

import pytest

from app.accounting.pricing import PriceTable, cost_usd


def test_sonnet_costs_input_output_and_cache_at_its_rates() -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000, "cache_read_input_tokens": 1_000_000,
             "cache_creation_input_tokens": 1_000_000}
    assert cost_usd("databricks-claude-sonnet-4-5", usage) == pytest.approx(3 + 1.5 + 0.3 + 3.75)


@pytest.mark.parametrize(("model", "usd"), [
    ("gpt-5", 1.25 + 10), ("gpt-5-mini", 0.25 + 2), ("gpt-4o-mini", 0.15 + 0.6), ("gpt-4o", 2.5 + 10),
    ("databricks-claude-opus-4-5", 5 + 25), ("claude-opus-4-1-20250805", 15 + 75), ("o3-mini", 1.1 + 4.4),
])
def test_the_first_matching_pattern_prices_the_model(model: str, usd: float) -> None:
    assert cost_usd(model, {"input_tokens": 1_000_000, "output_tokens": 1_000_000}) == pytest.approx(usd)


def test_an_unknown_model_has_no_cost_not_a_zero_cost() -> None:
    assert cost_usd("qwen2.5-coder:7b", {"input_tokens": 10}) is None
    assert cost_usd(None, {"input_tokens": 10}) is None


def test_defaults_price_models_the_table_lacks() -> None:
    table = PriceTable(default_input=0.5, default_output=1.0)
    assert table.cost_usd("qwen2.5-coder:7b", {"input_tokens": 2_000_000, "output_tokens": 1_000_000}) == 2.0
    assert table.cost_usd("gpt-4o", {"input_tokens": 1_000_000}) == 2.5  # the table still wins


def test_overrides_come_before_the_built_in_rows_and_cache_prices_default_to_input() -> None:
    table = PriceTable({"gpt-4o*": {"input": 1, "output": 2}})
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "cache_read_input_tokens": 1_000_000}
    assert table.cost_usd("gpt-4o-2024-08-06", usage) == 4.0


def test_a_malformed_override_names_its_pattern() -> None:
    with pytest.raises(ValueError, match="'gpt-5\\*'"):
        PriceTable({"gpt-5*": {"input": "cheap"}})
