"""Tools for chat-completions upstreams: names, call ids, schemas and ``tool_choice``.

Function names must match ``^[a-zA-Z0-9_-]{1,64}$`` upstream, so other names are shortened
reversibly (:func:`upstream_tool_name`, undone through :func:`tool_name_map`). Anthropic tool ids
must match ``^[a-zA-Z0-9_-]+$``, so foreign call ids are encoded (:func:`anthropic_tool_id`) and
decoded when they come back in a later request (:func:`upstream_tool_id`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from typing import Any

import orjson
from cachetools import LRUCache

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# Ids we encoded start with this marker; an upstream id that happens to start with it is
# encoded too, so decoding is never ambiguous.
ENCODED_ID_PREFIX = "lynkr_"
TOOL_SEARCH = "ToolSearch"
# Keywords whose value is a map of names to subschemas (the names are not keywords).
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
# Keywords whose value is data, never a subschema.
_SCHEMA_DATA = frozenset({"enum", "const", "default", "examples", "example", "required"})
_CHOICE_MODES = {"auto": "auto", "any": "required", "none": "none"}
# A client sends the same tool list with every request of a session (Claude Code: ~15 KB of
# schemas), so converting it once per distinct list saves walking every schema per request.
_converted: LRUCache[tuple[frozenset[str], bool, bytes], list[dict[str, Any]]] = LRUCache(maxsize=32)
_converted_lock = threading.Lock()


def digest(text: str, size: int = 8) -> str:
    """A short stable hex digest of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def upstream_tool_name(name: str) -> str:
    """The function name sent upstream for the Anthropic tool ``name`` (deterministic)."""
    if FUNCTION_NAME.match(name):
        return name
    safe = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:55]
    return f"{safe}_{digest(name)}"


def tool_name_map(request: dict[str, Any]) -> dict[str, str]:
    """Upstream function name -> original tool name, for the request's tools and past calls."""
    names = [tool.get("name") for tool in request.get("tools") or [] if isinstance(tool, dict)]
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            names += [b.get("name") for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    return {upstream_tool_name(n): n for n in names if isinstance(n, str) and n}


def anthropic_tool_id(upstream_id: Any, *, message_id: str, position: int) -> str:
    """An Anthropic-valid id for an upstream call id.

    Ids that are already valid pass unchanged. Others (Kimi's ``functions.Write:0``) become
    ``lynkr_<8 hex of message_id>_<base64url of the id>``: reversible, and unique across turns
    even when the upstream restarts its numbering each message. A missing id gets a synthetic
    one derived from ``message_id`` and the call's position.
    """
    if not isinstance(upstream_id, str) or not upstream_id:
        return f"call_{digest(f'{message_id}:{position}', 24)}"
    if ANTHROPIC_ID.match(upstream_id) and not upstream_id.startswith(ENCODED_ID_PREFIX):
        return upstream_id
    encoded = base64.urlsafe_b64encode(upstream_id.encode()).decode().rstrip("=")
    return f"{ENCODED_ID_PREFIX}{digest(message_id)}_{encoded}"


def upstream_tool_id(anthropic_id: str) -> str:
    """Undo :func:`anthropic_tool_id`: the call id the upstream originally sent."""
    if not anthropic_id.startswith(ENCODED_ID_PREFIX):
        return anthropic_id
    rest = anthropic_id[len(ENCODED_ID_PREFIX) :]
    _, sep, encoded = rest.partition("_")
    if not sep:
        return anthropic_id
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return anthropic_id


def strip_schema(schema: Any, keywords: frozenset[str]) -> Any:
    """A copy of a JSON schema without ``keywords``, removed at any depth."""
    if isinstance(schema, list):
        return [strip_schema(item, keywords) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in keywords:
            continue
        if key in _SCHEMA_DATA:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strip_schema(sub, keywords) for name, sub in value.items()}
        else:
            out[key] = strip_schema(value, keywords)
    return out


def is_function_tool(tool: Any, *, keep_tool_search: bool) -> bool:
    """Whether an Anthropic tool can be offered as a function.

    Server tools (``web_search_20250305`` and other typed tools without ``input_schema``) are
    dropped, and so is Claude Code's ``ToolSearch`` unless the target supports tool search:
    deferred tools are sent in full instead.
    """
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        return False
    if tool.get("type") not in (None, "custom") or not isinstance(tool.get("input_schema"), dict):
        return False
    return keep_tool_search or tool["name"] != TOOL_SEARCH


def to_function(tool: dict[str, Any], strip: frozenset[str]) -> dict[str, Any]:
    """One Anthropic tool as a chat-completions function (``defer_loading`` etc. dropped)."""
    parameters = strip_schema(tool["input_schema"], strip) if strip else dict(tool["input_schema"])
    # OpenAI rejects a parameters schema without a top-level "type": "object".
    parameters.setdefault("type", "object")
    function: dict[str, Any] = {"name": upstream_tool_name(tool["name"])}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def convert_tools(request: dict[str, Any], *, strip: frozenset[str], keep_tool_search: bool) -> list[dict[str, Any]]:
    """The request's tools that the target can take, as functions.

    The functions are shared between requests with the same tool list: callers must not
    modify them.
    """
    tools = request.get("tools") or []
    if not tools:
        return []
    key = (strip, keep_tool_search, orjson.dumps(tools))
    with _converted_lock:
        functions = _converted.get(key)
    if functions is None:
        functions = [to_function(t, strip) for t in tools if is_function_tool(t, keep_tool_search=keep_tool_search)]
        with _converted_lock:
            _converted[key] = functions
    return list(functions)


def convert_tool_choice(choice: Any, functions: list[dict[str, Any]]) -> str | dict[str, Any] | None:
    """Anthropic ``tool_choice`` as chat-completions ``tool_choice``; never names a dropped tool."""
    if not isinstance(choice, dict) or not functions:
        return None
    kind = choice.get("type")
    if kind == "tool" and isinstance(choice.get("name"), str):
        name = upstream_tool_name(choice["name"])
        if any(f["function"]["name"] == name for f in functions):
            return {"type": "function", "function": {"name": name}}
        return "auto"
    return _CHOICE_MODES.get(kind) if isinstance(kind, str) else None
