"""Tools for Ollama: the functions offered, ids for the calls it makes, and their arguments.

Ollama takes OpenAI-style function tools but checks no names, so tools keep their Anthropic
names and no name map is needed. Its tool calls carry no usable id (older servers send none,
newer ones restart the numbering every message), so each call gets a deterministic
``toolu_`` id from the message id and the call's position.
"""

from __future__ import annotations

from typing import Any

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.args import parse_arguments
from app.providers.formats.openai_chat.stream import text_call_names
from app.providers.formats.openai_chat.tools import digest, is_function_tool


def convert_tools(request: dict[str, Any], caps: ModelCapabilities) -> list[dict[str, Any]]:
    """The request's tools Ollama can take, as functions.

    Claude Code's deferred tools (``defer_loading``) are sent as ordinary tools and its
    ``ToolSearch`` is dropped; server tools (typed, without ``input_schema``) are dropped.
    ``tool_choice: none`` — and a model without tool support — means no tools at all.
    """
    choice = request.get("tool_choice")
    if not caps.tools or (isinstance(choice, dict) and choice.get("type") == "none"):
        return []
    return [_function(t) for t in request.get("tools") or [] if is_function_tool(t, keep_tool_search=False)]


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = dict(tool["input_schema"])
    parameters.setdefault("type", "object")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def printed_call_names(request: dict[str, Any], caps: ModelCapabilities) -> dict[str, str]:
    """Tool names a model may print a call with, when it may print calls at all (else empty).

    Small local models (qwen2.5-coder above all) often write ``<tool_call>{…}</tool_call>`` or
    a bare JSON call into the content when Ollama's template parser misses it.
    """
    if not caps.text_tool_calls or not convert_tools(request, caps):
        return {}
    return text_call_names(request)


def tool_id(message_id: str, position: int) -> str:
    """The Anthropic id of the ``position``-th call in message ``message_id``."""
    return "toolu_" + digest(f"{message_id}:{position}", 24)


def call_parts(call: Any) -> tuple[str, dict[str, Any] | None]:
    """``(name, arguments)`` of an Ollama tool call; arguments None when they cannot be read.

    Ollama sends arguments as an object; a string (some templates) is parsed and repaired.
    """
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return "", None
    name = given if isinstance(given := function.get("name"), str) else ""
    return name, parse_arguments(function.get("arguments"))
