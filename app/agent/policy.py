"""Limits on the server-side tool loop, and which Lynkr tools a request is offered.

A loop ends when the model answers, asks the client for a tool, or a limit is reached:
``POLICY_MAX_STEPS`` model calls, ``POLICY_MAX_TOOL_CALLS`` tool runs, ``POLICY_MAX_DURATION_MS``
of wall-clock time. A reached limit ends the turn as an assistant message saying which one —
never a 5xx, which Claude Code would retry, running the tools' side effects again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config import Config
from app.tools.base import Tool


@dataclass
class LoopLimits:
    """Counts one client request's steps and tool runs against the policy."""

    max_steps: int
    max_tool_calls: int
    max_duration_s: float
    clock: Callable[[], float] = time.monotonic
    steps: int = 0
    tool_calls: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @classmethod
    def from_config(cls, config: Config, clock: Callable[[], float] = time.monotonic) -> LoopLimits:
        """Limits from the ``POLICY_*`` settings."""
        return cls(config.policy_max_steps, config.policy_max_tool_calls, config.policy_max_duration_ms / 1000,
                   clock)

    def before_step(self) -> str | None:
        """Why another model call may not be made, or None (and count it)."""
        if self.steps >= self.max_steps:
            return f"the limit of {self.max_steps} model calls per request (POLICY_MAX_STEPS)"
        if self.clock() - self.started >= self.max_duration_s:
            return f"the time limit of {self.max_duration_s:g} s per request (POLICY_MAX_DURATION_MS)"
        self.steps += 1
        return None

    def before_tools(self, count: int) -> str | None:
        """Why ``count`` more tool runs may not happen, or None (and count them)."""
        if self.tool_calls + count > self.max_tool_calls:
            return f"the limit of {self.max_tool_calls} tool runs per request (POLICY_MAX_TOOL_CALLS)"
        self.tool_calls += count
        return None


def limit_message(reason: str) -> str:
    """The text an assistant message ends with when a limit stopped the loop."""
    return (f"\n\n[Lynkr stopped running tools: this request reached {reason}. "
            "Ask me to continue if there is more to do.]")


def offered_tools(request: Mapping[str, Any], config: Config, registry: Mapping[str, Tool]) -> dict[str, Tool]:
    """The Lynkr tools offered to the model for ``request`` in server mode.

    ``SERVER_TOOLS``: ``auto`` offers those that do not duplicate a tool the client sent (a
    client that sends no tools gets them all), ``all`` every tool, ``none`` nothing, or a comma
    list of names. A Lynkr tool the client declares itself is always run on the server.
    Disallowed tools are never offered. The registry's providers (MCP servers) add the tools
    they have now; a registry tool keeps its name.
    """
    from app.tools.registry import provided_tools  # loaded only when tools are on

    registry = {**provided_tools(config), **registry}
    client_names = {t.get("name") for t in request.get("tools") or [] if isinstance(t, dict)}
    choice = config.server_tools.strip().lower()
    if choice == "none":
        chosen: dict[str, Tool] = {}
    elif choice in ("auto", ""):
        chosen = {n: t for n, t in registry.items() if client_names.isdisjoint(t.duplicates)}
    elif choice == "all":
        chosen = dict(registry)
    else:
        wanted = {name.strip() for name in config.server_tools.split(",")}
        chosen = {n: t for n, t in registry.items() if n in wanted}
    chosen.update({n: t for n, t in registry.items() if n in client_names})
    return {n: t for n, t in chosen.items() if n not in config.policy_disallowed_tools}
