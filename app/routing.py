"""Choosing the provider and model for a request.

Model names follow one rule: a Claude model name from the client (``claude-*``, or one that
contains haiku/sonnet/opus) maps to the model configured for the chosen provider — per tier
when ``MODEL_ALIASES`` names one — and any other name passes through unchanged, so a client can
ask for ``gpt-5-mini`` or ``deepseek-reasoner`` by name.
"""

from __future__ import annotations

from functools import lru_cache

TIERS = ("haiku", "sonnet", "opus")


def is_claude_model(name: str) -> bool:
    """Whether ``name`` is a Claude model name (which Lynkr maps to a configured model)."""
    lowered = name.lower()
    return lowered.startswith("claude") or any(tier in lowered for tier in TIERS)


def tier_of(name: str) -> str | None:
    """``haiku``, ``sonnet`` or ``opus`` when the name says so."""
    lowered = name.lower()
    return next((tier for tier in TIERS if tier in lowered), None)


@lru_cache(maxsize=64)
def parse_aliases(spec: str) -> dict[str, str]:
    """``"haiku=a,opus=b"`` → ``{"haiku": "a", "opus": "b"}``."""
    aliases = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() and value.strip():
            aliases[key.strip().lower()] = value.strip()
    return aliases


def resolve_model(requested: str, default: str, aliases: str = "") -> str:
    """The upstream model for the client's ``requested`` name (see module docstring)."""
    if not is_claude_model(requested):
        return requested
    table = parse_aliases(aliases) if aliases else {}
    if requested.lower() in table:
        return table[requested.lower()]
    tier = tier_of(requested)
    return table.get(tier, default) if tier else (default or requested)
