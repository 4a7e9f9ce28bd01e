"""The contract every Lynkr tool follows.

A :class:`Tool` is data: a name the model calls, a description and JSON schema it is offered,
the client tools it duplicates (so it is not offered beside them), and ``run``, which takes a
:class:`ToolContext` and the model's arguments and returns text or Anthropic content blocks.
A tool refuses by raising :class:`ToolError`; its message reaches the model as an ``is_error``
result. Tools never read ``os.environ`` or Flask state: everything comes through the context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.config import Config

if TYPE_CHECKING:
    from app.tools.paths import Workspace

ToolOutput = str | list[dict[str, Any]]
ModelCall = Callable[[str, str], str]
"""Asks the configured model (system prompt, user prompt) for a text answer, through the gateway's
routing, fallback and budgets like any other model call; tools that need a model (diff review,
release notes) get one in :attr:`ToolContext.ask_model`."""


class ToolError(Exception):
    """A refusal or failure the model should see (as an ``is_error`` tool result)."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool run may use: settings, the workspace, and whose request it serves."""

    config: Config
    workspace: Workspace
    session_id: str | None = None
    api_key: str | None = None
    request_id: str = ""
    ask_model: ModelCall | None = None
    # Set when the client went away: a tool that waits (an MCP call) stops waiting and cancels.
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Tool:
    """One tool the gateway can run itself."""

    name: str
    description: str
    input_schema: dict[str, Any]
    run: Callable[[ToolContext, dict[str, Any]], ToolOutput]
    duplicates: tuple[str, ...] = ()  # client tools (Claude Code's names) that do the same job

    def definition(self) -> dict[str, Any]:
        """The Anthropic tool definition offered to the model."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


def arg(args: Mapping[str, Any], *names: str, default: Any = None, required: bool = False) -> Any:
    """The first of ``names`` present in ``args`` (Claude Code's aliases, e.g. ``file_path``).

    Raises :class:`ToolError` naming the argument when ``required`` and none is given.
    """
    for name in names:
        value = args.get(name)
        if value is not None:
            return value
    if required:
        raise ToolError(f"missing required argument '{names[0]}'")
    return default


def str_arg(args: Mapping[str, Any], *names: str, required: bool = False, default: str | None = None) -> str | None:
    """A string argument; anything else is a :class:`ToolError`."""
    value = arg(args, *names, default=default, required=required)
    if value is not None and not isinstance(value, str):
        raise ToolError(f"argument '{names[0]}' must be a string")
    return value


def int_arg(args: Mapping[str, Any], *names: str, default: int | None = None, minimum: int = 0) -> int | None:
    """A whole-number argument (numeric strings accepted), at least ``minimum``."""
    value = arg(args, *names, default=default)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ToolError(f"argument '{names[0]}' must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"argument '{names[0]}' must be a whole number") from exc
    if number < minimum:
        raise ToolError(f"argument '{names[0]}' must be at least {minimum}")
    return number


def bool_arg(args: Mapping[str, Any], *names: str, default: bool = False) -> bool:
    """A true/false argument (the strings ``"true"``/``"false"`` accepted, in any case).

    Anything else is a :class:`ToolError`, so a misspelt flag is never silently false.
    """
    value = arg(args, *names, default=default)
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ToolError(f"argument '{names[0]}' must be true or false")
    return value


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n… [truncated: {len(text) - limit} more characters]"
