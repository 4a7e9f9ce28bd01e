"""Choosing the provider and model for a request: the candidate chain and its filters.

Model names follow one rule: a Claude model name from the client (``claude-*``, or one that
contains haiku/sonnet/opus) maps to the model configured for the chosen provider — per tier
when ``MODEL_ALIASES`` names one — and any other name passes through unchanged, so a client can
ask for ``gpt-5-mini`` or ``deepseek-reasoner`` by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from app.errors import PromptTooLongError

if TYPE_CHECKING:
    from app.config import Config
    from app.exchange import RequestFacts
    from app.providers.base import Provider
    from app.resilience.breaker import BreakerRegistry

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


@dataclass(frozen=True)
class Route:
    """One candidate: the provider to try and why it was chosen."""

    provider: str
    reason: str
    model: str | None = None  # a routing rule's provider:model


CLOUD_TIER = ("openrouter", "openai", "azure-openai")


def client_tool_count(request: Mapping[str, Any]) -> int:
    """Tools the client sent (tools the gateway adds are not counted)."""
    tools = request.get("tools")
    return len(tools) if isinstance(tools, list) else 0


def choose(request: Mapping[str, Any], config: Config, configured: Callable[[str], bool]) -> list[Route]:
    """The candidates for ``request`` in order: the chosen provider, then its fallbacks.

    Static: ``MODEL_PROVIDER``. Hybrid (``PREFER_OLLAMA``), by the client's tool count: fewer
    than ``OLLAMA_MAX_TOOLS_FOR_ROUTING`` → Ollama; fewer than
    ``OPENROUTER_MAX_TOOLS_FOR_ROUTING`` → the first configured of OpenRouter / OpenAI / Azure
    OpenAI; otherwise ``FALLBACK_PROVIDER``. With ``FALLBACK_ENABLED`` the chain continues with
    the later tiers and the fallback provider; only configured providers appear, except that
    the first choice always does (so its "not configured" error names what to set).
    """
    if not config.prefer_ollama:
        chain = [Route(config.model_provider, "static")]
        if config.fallback_enabled:
            chain.append(Route(config.fallback_provider, "fallback"))
    else:
        chain = _hybrid(client_tool_count(request), config, configured)
    if not config.fallback_enabled:
        chain = chain[:1]
    return _dedupe([chain[0]] + [r for r in chain[1:] if configured(r.provider)])


def _hybrid(tools: int, config: Config, configured: Callable[[str], bool]) -> list[Route]:
    cloud = [Route(name, "tools_under_cloud_limit") for name in CLOUD_TIER if configured(name)]
    fallback = Route(config.fallback_provider, "tools_over_cloud_limit")
    if tools < config.ollama_max_tools:
        ollama_reason = "tools_under_ollama_limit"
        if not config.fallback_enabled:
            return [Route("ollama", ollama_reason)]
        return [Route("ollama", ollama_reason), *cloud, Route(config.fallback_provider, "fallback")]
    if tools < config.openrouter_max_tools and cloud:
        return [*cloud, Route(config.fallback_provider, "fallback")]
    return [fallback]


def _dedupe(chain: list[Route]) -> list[Route]:
    seen: set[str] = set()
    out = []
    for route in chain:
        if route.provider not in seen:
            seen.add(route.provider)
            out.append(route)
    return out


@dataclass(frozen=True)
class RoutingRule:
    """``if`` every condition holds, route to ``provider`` (and ``model``, when given).

    Conditions: ``model`` (a tier or substring of the requested name: haiku/sonnet/opus),
    ``thinking`` (true: the request asks for thinking), ``min_input_tokens`` (estimated prompt
    size), ``images`` (true: some message carries an image).
    """

    provider: str
    model: str | None = None
    model_contains: str | None = None
    thinking: bool | None = None
    min_input_tokens: int | None = None
    images: bool | None = None

    def matches(self, request: Mapping[str, Any], estimated_tokens: int, has_images: bool) -> bool:
        """Whether every condition of the rule holds for ``request``."""
        checks = (
            self.model_contains is None or self.model_contains.lower() in str(request.get("model", "")).lower(),
            self.thinking is None or self.thinking == bool(request.get("thinking")),
            self.min_input_tokens is None or estimated_tokens >= self.min_input_tokens,
            self.images is None or self.images == has_images,
        )
        return all(checks)


RULE_CONDITIONS = {"model": "model_contains", "thinking": "thinking", "min_input_tokens": "min_input_tokens",
                   "images": "images"}


def parse_rules(raw: Any, providers: frozenset[str]) -> list[RoutingRule]:
    """Rules from the ``ROUTING_RULES`` file's JSON; raises ValueError saying what is wrong."""
    if not isinstance(raw, list):
        raise ValueError("expected a JSON list of {\"if\": {...}, \"then\": \"provider[:model]\"}")
    rules = []
    for number, item in enumerate(raw, start=1):
        conditions = item.get("if") if isinstance(item, dict) else None
        target = item.get("then") if isinstance(item, dict) else None
        if not isinstance(conditions, dict) or not isinstance(target, str):
            raise ValueError(f"rule {number} needs an \"if\" object and a \"then\" string")
        unknown = set(conditions) - set(RULE_CONDITIONS)
        if unknown:
            raise ValueError(f"rule {number} has unknown conditions {sorted(unknown)}")
        provider, _, model = target.partition(":")
        if provider not in providers:
            raise ValueError(f"rule {number} routes to unknown provider {provider!r}")
        rules.append(RoutingRule(provider=provider, model=model or None,
                                 **{RULE_CONDITIONS[k]: v for k, v in conditions.items()}))
    return rules


def rule_route(rules: list[RoutingRule], request: Mapping[str, Any], estimated_tokens: int,
               has_images: bool) -> Route | None:
    """The first matching rule's route, or None."""
    for number, rule in enumerate(rules, start=1):
        if rule.matches(request, estimated_tokens, has_images):
            return Route(rule.provider, f"rule:{number}", rule.model)
    return None


class Router:
    """The candidates that can take a request: the provider chain, routing rules, open breakers
    passed over, and the capability checks (vision, context window)."""

    def __init__(self, config: Config, providers: Mapping[str, Provider], breakers: BreakerRegistry,
                 rules: list[RoutingRule], on_fallback: Callable[[str, str, str], None]) -> None:
        self.config = config
        self.providers = providers
        self.breakers = breakers
        self.rules = rules
        self.on_fallback = on_fallback

    def candidates(self, request: Mapping[str, Any], facts: RequestFacts) -> list[Route]:
        """The candidates for ``request`` that can take it, in order.

        A candidate whose model cannot take the request (images without vision, a prompt over
        its context window) is skipped while another remains; the last one is kept so its own
        error reaches the client — except a prompt no candidate can hold, which is refused in
        the wording on which Claude Code compacts.
        """
        chain = [r for r in choose(request, self.config, self._configured) if r.provider in self.providers]
        estimated = facts.estimated_tokens
        ruled = rule_route(self.rules, request, estimated, facts.images) if self.rules else None
        if ruled is not None:
            chain = [ruled, *[r for r in chain if r.provider != ruled.provider]]
        # An open breaker is passed over before its provider is asked anything (Ollama's
        # capability probe would contact the failing server); the last candidate stays.
        open_breakers = [r for r in chain if self.breakers.get(r.provider).rejecting()]
        if len(open_breakers) < len(chain):
            chain = [r for r in chain if r not in open_breakers]
            for skipped in open_breakers:
                self.on_fallback(skipped.provider, chain[0].provider, "circuit_breaker")
        reasons = {r.provider: self.providers[r.provider].incompatibility(request, estimated, facts.images, r.model)
                   for r in chain}
        kept = [r for r in chain if reasons[r.provider] is None]
        for route in chain:
            reason = reasons[route.provider]
            if reason and kept:
                self.on_fallback(route.provider, kept[0].provider, reason)
        if kept:
            return kept
        if chain and all(reason == "context_too_long" for reason in reasons.values()):
            window = max(self._context_window(r.provider, request) or 0 for r in chain)
            raise PromptTooLongError(estimated, window)
        return chain[-1:]

    def target(self, route: Route, requested_model: str) -> tuple[Provider, str]:
        """The provider a candidate names and the upstream model it would call."""
        provider = self.providers[route.provider]
        return provider, route.model or provider.upstream_model(requested_model)

    def _context_window(self, name: str, request: Mapping[str, Any]) -> int | None:
        provider = self.providers[name]
        return provider.caps(provider.upstream_model(str(request.get("model", "")))).context_window

    def _configured(self, name: str) -> bool:
        provider = self.providers.get(name)
        return provider is not None and provider.configured
