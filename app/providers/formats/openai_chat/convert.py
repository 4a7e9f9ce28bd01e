"""Anthropic Messages <-> OpenAI chat completions, sans I/O.

Public API (plain dicts in, dicts or events out; no flask, requests, peewee or config):

- :class:`ChatDialect` — per-target quirks (reasoning parameter, rejected schema keywords,
  ``user``, tool search), chosen by the provider module.
- :func:`to_upstream` — an Anthropic request as a chat-completions request body (structured
  outputs, ``output_config.format``, become ``response_format: {type: json_schema}``).
- :func:`tool_name_map` — upstream function name -> original tool name, for names that had
  to be shortened (over 64 characters, or characters outside ``[a-zA-Z0-9_-]``).
- :func:`from_upstream` — a chat-completions response as an Anthropic ``Message``; raises
  :class:`UpstreamFormatError` for bodies without choices (OpenRouter's 200 + ``error``).
- :class:`StreamTranslator` — ``feed(chunk)`` / ``done()`` / ``close()``: stream chunks as
  Anthropic events, all emitted through :class:`app.anthropic.events.StreamBuilder`.
- :func:`upstream_error` — an upstream error as ``(status, error type, message)``; context
  overflow in any wording becomes ``prompt is too long: N tokens > M maximum``.

Tool call ids: upstream ids that are valid Anthropic ids pass unchanged; others (Kimi's
``functions.Write:0``) are encoded reversibly as ``lynkr_<hash>_<base64url>`` and decoded when
Claude Code sends them back in ``tool_use`` / ``tool_result`` (see :mod:`app.providers.formats.openai_chat.tools`).
Thinking that a non-Anthropic model produced carries a signature starting with
``SYNTHETIC_SIGNATURE_PREFIX``; no signature is ever sent upstream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.args import TextCallBuffer, parse_arguments
from app.providers.formats.openai_chat.errors import UpstreamFormatError, status_of, upstream_error
from app.providers.formats.openai_chat.messages import convert_messages
from app.providers.formats.openai_chat.reply import (
    anthropic_message,
    anthropic_usage,
    content_text,
    reasoning_of,
    split_think,
    stop_reason,
)
from app.providers.formats.openai_chat.stream import StreamTranslator, text_call_names
from app.providers.formats.openai_chat.tools import (
    anthropic_tool_id,
    convert_tool_choice,
    convert_tools,
    strip_schema,
    tool_name_map,
)

__all__ = [
    "ChatDialect",
    "StreamTranslator",
    "UpstreamFormatError",
    "from_upstream",
    "to_upstream",
    "tool_name_map",
    "upstream_error",
]

# Anthropic effort levels (output_config.effort) as OpenAI reasoning_effort values.
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
MAX_STOP_SEQUENCES = 4  # OpenAI rejects more than four
OUTPUT_SCHEMA_NAME = "output"  # response_format.json_schema needs a name; Anthropic's format has none


@dataclass(frozen=True)
class ChatDialect:
    """Quirks of one chat-completions target, chosen by the provider module."""

    name: str  # "openai" | "azure-openai" | "openrouter" | "databricks" | "openai-compatible"
    reasoning: str | None = "reasoning_effort"  # "reasoning_effort" | "openrouter" | None
    # Removed from tool schemas at any depth. "$schema" is an annotation (no constraint is lost)
    # outside OpenAI's and Azure's documented schema subsets, and Google's models behind OpenRouter
    # and Databricks, and strict converters behind OpenAI-compatible servers, answer 400 to it.
    strip_schema_keywords: frozenset[str] = frozenset({"$schema"})
    send_user: bool = True  # metadata.user_id -> "user" (sha256 hex)
    tool_search: bool = False  # keep Claude Code's ToolSearch tool


def to_upstream(
    request: dict[str, Any], *, model: str, caps: ModelCapabilities, dialect: ChatDialect, stream: bool
) -> dict[str, Any]:
    """The chat-completions body for an Anthropic request; unknown Anthropic fields are not forwarded."""
    body: dict[str, Any] = {"model": model, "messages": convert_messages(request, caps)}
    body[caps.max_tokens_param] = max_tokens(request, caps)
    body.update(_sampling(request, caps))
    body.update(_tools(request, caps, dialect))
    body.update(_reasoning(request, caps, dialect))
    schema = output_schema(request)
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": OUTPUT_SCHEMA_NAME, "schema": strip_schema(schema, dialect.strip_schema_keywords)}}
    user_id = (request.get("metadata") or {}).get("user_id")
    if dialect.send_user and isinstance(user_id, str) and user_id:
        body["user"] = hashlib.sha256(user_id.encode()).hexdigest()
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def output_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``output_config.format`` (Anthropic's structured outputs), or None."""
    config = request.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    return schema if isinstance(schema, dict) else None


def max_tokens(request: dict[str, Any], caps: ModelCapabilities) -> int:
    """``max_tokens`` clamped to what the model can produce."""
    wanted = request.get("max_tokens")
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
        return min(wanted, caps.max_output_tokens)
    return caps.max_output_tokens


def reasoning_effort(request: dict[str, Any]) -> str | None:
    """``output_config.effort``, else ``thinking.budget_tokens``, as low / medium / high."""
    config = request.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if isinstance(effort, str) and effort in EFFORTS:
        return EFFORTS[effort]
    thinking = request.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int):
        return "medium"
    return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"


def _sampling(request: dict[str, Any], caps: ModelCapabilities) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if caps.accepts_temperature:
        for key in ("temperature", "top_p"):
            value = request.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = value
    stops = [s for s in request.get("stop_sequences") or [] if isinstance(s, str) and s]
    if stops:
        out["stop"] = stops[:MAX_STOP_SEQUENCES]
    return out


def _tools(request: dict[str, Any], caps: ModelCapabilities, dialect: ChatDialect) -> dict[str, Any]:
    if not caps.tools:
        return {}
    functions = convert_tools(request, strip=dialect.strip_schema_keywords, keep_tool_search=dialect.tool_search)
    if not functions:
        return {}
    out: dict[str, Any] = {"tools": functions}
    choice = request.get("tool_choice")
    converted = convert_tool_choice(choice, functions)
    if converted is not None:
        out["tool_choice"] = converted
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") and caps.parallel_tool_calls:
        out["parallel_tool_calls"] = False
    return out


def _reasoning(request: dict[str, Any], caps: ModelCapabilities, dialect: ChatDialect) -> dict[str, Any]:
    effort = reasoning_effort(request) if caps.reasoning_effort else None
    if effort is None or dialect.reasoning is None:
        return {}
    if dialect.reasoning == "openrouter":
        return {"reasoning": {"effort": effort}}
    return {"reasoning_effort": effort}


# -- responses ------------------------------------------------------------------------------


def from_upstream(
    body: dict[str, Any], *, message_id: str, model: str, request: dict[str, Any], caps: ModelCapabilities
) -> dict[str, Any]:
    """A chat-completions response as an Anthropic ``Message`` echoing ``model``.

    Raises :class:`UpstreamFormatError` when the body has no choices (an embedded ``error``
    is typed by its code) or when tool arguments cannot be parsed or repaired.
    """
    choice = _choice(body, caps)
    message = given if isinstance(given := choice.get("message"), dict) else {}
    finish_reason = choice.get("finish_reason")
    if finish_reason == "error":  # OpenRouter ends a failed generation this way
        raise UpstreamFormatError(500, "api_error", "upstream reported an error while generating")
    thinking, text = split_think(content_text(message.get("content")))
    thinking = reasoning_of(message) + thinking
    text = text or (refusal if isinstance(refusal := message.get("refusal"), str) else "")
    calls = _tool_uses(message.get("tool_calls"), message_id, request, repair=finish_reason != "length")
    if caps.text_tool_calls and text_call_names(request):
        text, printed = _printed_calls(text, message_id, request, start=len(calls))
        calls += printed
    return anthropic_message(
        message_id=message_id, model=model, thinking=thinking, text=text, calls=calls,
        stop=stop_reason(finish_reason, has_tool_use=bool(calls)),
        usage=anthropic_usage(body.get("usage")) or {"input_tokens": 0, "output_tokens": 0},
    )


def _choice(body: Any, caps: ModelCapabilities) -> dict[str, Any]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    error = body.get("error") if isinstance(body, dict) else None
    if error:
        # OpenRouter answers some failures with HTTP 200 and an error object, no choices.
        status = status_of(error, default=500)
        raise UpstreamFormatError(*upstream_error(status, body, context_window=caps.context_window))
    raise UpstreamFormatError(500, "api_error", "upstream response has no choices")


def _tool_uses(calls: Any, message_id: str, request: dict[str, Any], *, repair: bool) -> list[dict[str, Any]]:
    names = tool_name_map(request)
    blocks: list[dict[str, Any]] = []
    for position, call in enumerate(c for c in calls or [] if isinstance(c, dict)):
        function = given if isinstance(given := call.get("function"), dict) else {}
        name = names.get(function.get("name") or "", function.get("name") or "")
        arguments = parse_arguments(function.get("arguments"), repair=repair)
        if not name:
            raise UpstreamFormatError(500, "api_error", "upstream sent a tool call without a function name")
        if arguments is None:
            problem = "ran out of output tokens in the middle of" if not repair else "sent invalid JSON arguments for"
            raise UpstreamFormatError(500, "api_error", f"the model {problem} a call to {name}")
        tool_id = anthropic_tool_id(call.get("id"), message_id=message_id, position=position)
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
    return blocks


def _printed_calls(
    text: str, message_id: str, request: dict[str, Any], *, start: int
) -> tuple[str, list[dict[str, Any]]]:
    """Calls printed as text, found exactly as the stream translator finds them."""
    buffer = TextCallBuffer(text_call_names(request))
    shown = buffer.feed(text)
    rest, calls = buffer.finish()
    blocks = [
        {
            "type": "tool_use",
            "id": anthropic_tool_id(None, message_id=message_id, position=n),
            "name": name,
            "input": arguments,
        }
        for n, (name, arguments) in enumerate(calls, start=start)
    ]
    return shown + rest, blocks
