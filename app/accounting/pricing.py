"""What a call cost: a price table per upstream model, in USD per million tokens — data, not logic.

Like the capability table, prices are looked up by the model name actually sent upstream, with
``fnmatch`` patterns tried in order (the first match wins). ``PRICE_TABLE`` (a JSON file of
``{"pattern": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}``) is tried
before the built-in rows; ``DEFAULT_PRICE_INPUT`` / ``DEFAULT_PRICE_OUTPUT`` price every model
no row matches. A model with no price has an unknown cost (``None``), never a cost of 0.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Cache prices default to the input price when a row omits them."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: dict[str, Any]) -> float:
        """The USD cost of an Anthropic ``usage`` object at this price."""
        cache_read = self.input if self.cache_read is None else self.cache_read
        cache_write = self.input if self.cache_write is None else self.cache_write
        total = (int(usage.get("input_tokens") or 0) * self.input
                 + int(usage.get("output_tokens") or 0) * self.output
                 + int(usage.get("cache_read_input_tokens") or 0) * cache_read
                 + int(usage.get("cache_creation_input_tokens") or 0) * cache_write)
        return total / PER_MILLION


def _p(input_: float, output: float, cache_read: float | None = None, cache_write: float | None = None) -> Price:
    return Price(input_, output, cache_read, cache_write)


# Ordered: the first matching pattern wins. Patterns match the upstream model name, lowercased.
# Published list prices (USD / 1M tokens); Anthropic cache writes are the 5-minute rate.
PRICE_TABLE: list[tuple[str, Price]] = [
    ("*claude-opus-4-5*", _p(5, 25, 0.5, 6.25)),
    ("*claude-opus-4*", _p(15, 75, 1.5, 18.75)),
    ("*claude-3-opus*", _p(15, 75, 1.5, 18.75)),
    ("*claude-sonnet-4*", _p(3, 15, 0.3, 3.75)),
    ("*claude-3-7-sonnet*", _p(3, 15, 0.3, 3.75)),
    ("*claude-3-5-sonnet*", _p(3, 15, 0.3, 3.75)),
    ("*claude-haiku-4*", _p(1, 5, 0.1, 1.25)),
    ("*claude-3-5-haiku*", _p(0.8, 4, 0.08, 1)),
    ("*gpt-5*-nano*", _p(0.05, 0.4, 0.005)),
    ("*gpt-5*-mini*", _p(0.25, 2, 0.025)),
    ("*gpt-5*", _p(1.25, 10, 0.125)),
    ("*gpt-4.1-nano*", _p(0.1, 0.4, 0.025)),
    ("*gpt-4.1-mini*", _p(0.4, 1.6, 0.1)),
    ("*gpt-4.1*", _p(2, 8, 0.5)),
    ("*gpt-4o-mini*", _p(0.15, 0.6, 0.075)),
    ("*gpt-4o*", _p(2.5, 10, 1.25)),
    ("o4-mini*", _p(1.1, 4.4, 0.275)),
    ("o3-mini*", _p(1.1, 4.4, 0.55)),
    ("o3*", _p(2, 8, 0.5)),
    ("o1*", _p(15, 60, 7.5)),
]


class PriceTable:
    """Prices by upstream model name: overrides, then the built-in rows, then the default."""

    def __init__(self, overrides: dict[str, Any] | None = None, default_input: float | None = None,
                 default_output: float | None = None) -> None:
        rows = [(pattern.lower(), _parse(pattern, value)) for pattern, value in (overrides or {}).items()]
        self._rows = [*rows, *PRICE_TABLE]
        self._default = (Price(default_input, default_output)
                         if default_input is not None and default_output is not None else None)

    def price(self, model: str | None) -> Price | None:
        """The price of ``model``, or None when nothing prices it."""
        if not model:
            return self._default
        lowered = model.lower()
        return next((price for pattern, price in self._rows if fnmatch.fnmatchcase(lowered, pattern)),
                    self._default)

    def cost_usd(self, model: str | None, usage: dict[str, Any] | None) -> float | None:
        """The USD cost of ``usage`` on ``model``; None when the model has no price."""
        price = self.price(model)
        return None if price is None else round(price.cost(usage or {}), 8)


def _parse(pattern: str, value: Any) -> Price:
    """One ``PRICE_TABLE`` row; raises ValueError naming the pattern when it is malformed."""
    try:
        return Price(float(value["input"]), float(value["output"]),
                     None if value.get("cache_read") is None else float(value["cache_read"]),
                     None if value.get("cache_write") is None else float(value["cache_write"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"price for {pattern!r} needs numbers input and output (USD per million "
                         f"tokens), optionally cache_read and cache_write") from exc


DEFAULT_PRICES = PriceTable()


def cost_usd(model: str | None, usage: dict[str, Any] | None, table: PriceTable = DEFAULT_PRICES) -> float | None:
    """The USD cost of ``usage`` on ``model`` in ``table`` (the built-in one by default)."""
    return table.cost_usd(model, usage)
