"""Anthropic Messages <-> Ollama's native ``/api/chat`` (NDJSON streaming), sans I/O.

Public API (plain dicts in, dicts or events out; no flask, requests, peewee or config):

- :func:`to_upstream` — an Anthropic request as an ``/api/chat`` body. Sampling goes in
  ``options`` (``num_predict`` is ``max_tokens`` clamped to the model's output limit), thinking
  becomes ``think`` (a level for models with reasoning effort, such as gpt-oss), and a structured
  output's JSON schema (``output_config.format``) becomes ``format``.
- :func:`dropped_notes` — what of the request Ollama cannot honour (``tool_choice`` any/tool),
  for the provider to log; formats never log.
- :func:`from_upstream` — a non-streamed answer as an Anthropic ``Message``; raises
  :class:`UpstreamFormatError` for an ``{"error": ...}`` body.
- :class:`StreamTranslator` — ``feed(line)`` / ``close()``: parsed NDJSON lines as Anthropic
  events, all emitted through :class:`app.anthropic.events.StreamBuilder`.
- :func:`upstream_error` — an Ollama error as ``(status, error type, message)``.
- :func:`features_from_show` / :func:`features_from_name` — whether a model takes tools and
  ``think``, from its ``/api/show`` answer or its name.

Thinking the model produced (``message.thinking`` or a leading ``<think>…</think>`` in the
content) becomes a thinking block signed with ``SYNTHETIC_SIGNATURE_PREFIX``; prior thinking goes
back in the assistant message's ``thinking`` field. Tool ids are ``toolu_`` + a digest of the
message id and the call's position.
"""

from __future__ import annotations

import re
from typing import Any

from app.anthropic.types import Usage
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.ollama.messages import convert_messages
from app.providers.formats.ollama.reply import ollama_usage, upstream_error
from app.providers.formats.ollama.show import ModelFeatures, features_from_name, features_from_show
from app.providers.formats.ollama.stream import StreamTranslator
from app.providers.formats.ollama.tools import call_parts, convert_tools, printed_call_names, tool_id
from app.providers.formats.openai_chat.args import TextCallBuffer
from app.providers.formats.openai_chat.convert import max_tokens, output_schema, reasoning_effort
from app.providers.formats.openai_chat.errors import UpstreamFormatError
from app.providers.formats.openai_chat.reply import anthropic_message, content_text, split_think, stop_reason

__all__ = [
    "ModelFeatures",
    "StreamTranslator",
    "UpstreamFormatError",
    "dropped_notes",
    "features_from_name",
    "features_from_show",
    "from_upstream",
    "to_upstream",
    "upstream_error",
    "wants_thinking",
    "wants_tools",
]

THINKING_ON = ("enabled", "adaptive")
_SECONDS = re.compile(r"-?\d+")


def to_upstream(
    request: dict[str, Any],
    *,
    model: str,
    caps: ModelCapabilities,
    stream: bool,
    keep_alive: str | int | None = None,
    can_think: bool = True,
) -> dict[str, Any]:
    """The ``/api/chat`` body for an Anthropic request; unknown Anthropic fields are not forwarded.

    ``caps.tools`` False leaves tools out (the model has no tool support); ``can_think`` False
    leaves ``think: true`` out (Ollama answers 400 to it for a model that cannot think).
    ``stream`` is always sent: Ollama streams unless told not to.
    """
    body: dict[str, Any] = {"model": model, "messages": convert_messages(request, caps), "stream": stream}
    tools = convert_tools(request, caps)
    if tools:
        body["tools"] = tools
    think = _think(request, caps)
    if think is False or (think is not None and can_think):
        body["think"] = think
    schema = output_schema(request)
    if schema is not None:
        body["format"] = schema
    body["options"] = _options(request, caps)
    if keep_alive not in (None, ""):
        body["keep_alive"] = _keep_alive(keep_alive)
    return body


def _keep_alive(value: str | int) -> str | int:
    # Ollama reads a number as seconds (negative: forever) but rejects "300" or "-1" as a duration.
    return int(value) if isinstance(value, str) and _SECONDS.fullmatch(value.strip()) else value


def wants_tools(request: dict[str, Any]) -> bool:
    """Whether the request offers tools Ollama would be sent (the provider checks support then)."""
    return bool(convert_tools(request, ModelCapabilities()))


def wants_thinking(request: dict[str, Any]) -> bool:
    """Whether the request asks for thinking (the provider checks the model can think then)."""
    thinking = request.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in THINKING_ON


def dropped_notes(request: dict[str, Any]) -> list[str]:
    """Sentences naming what Ollama cannot honour in ``request``, for the provider to log."""
    choice = request.get("tool_choice")
    if not isinstance(choice, dict):
        return []
    kind = choice.get("type")
    if kind == "any" and wants_tools(request):
        return ["tool_choice any dropped: Ollama cannot force a tool call, the model may answer in text"]
    if kind == "tool" and wants_tools(request):
        return [f"tool_choice {choice.get('name')!r} dropped: Ollama cannot force a tool call, "
                "the model may answer in text or call another tool"]
    return []


def _think(request: dict[str, Any], caps: ModelCapabilities) -> bool | str | None:
    """``think``: a level for effort models (gpt-oss), else true/false; None to leave it out."""
    thinking = request.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if caps.reasoning_effort:
        # gpt-oss takes "low" | "medium" | "high" and always thinks, so false is never sent.
        level = reasoning_effort(request)
        return level or (True if kind in THINKING_ON else None)
    if kind in THINKING_ON:
        return True
    return False if kind == "disabled" else None


def _options(request: dict[str, Any], caps: ModelCapabilities) -> dict[str, Any]:
    options: dict[str, Any] = {"num_predict": max_tokens(request, caps)}
    if caps.accepts_temperature:
        for key in ("temperature", "top_p", "top_k"):
            value = request.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                options[key] = value
    stops = [s for s in request.get("stop_sequences") or [] if isinstance(s, str) and s]
    if stops:
        options["stop"] = stops
    return options


# -- responses ------------------------------------------------------------------------------


def from_upstream(
    body: dict[str, Any], *, message_id: str, model: str, request: dict[str, Any], caps: ModelCapabilities
) -> dict[str, Any]:
    """A non-streamed ``/api/chat`` answer as an Anthropic ``Message`` echoing ``model``.

    Raises :class:`UpstreamFormatError` for an error body or a tool call that cannot be read.
    """
    if not isinstance(body, dict) or body.get("error"):
        raise UpstreamFormatError(*upstream_error(500, body, context_window=caps.context_window))
    message = given if isinstance(given := body.get("message"), dict) else {}
    thinking, text = split_think(content_text(message.get("content")))
    if isinstance(message.get("thinking"), str):
        thinking = message["thinking"] + thinking
    calls = [_tool_use(call, message_id, n) for n, call in enumerate(message.get("tool_calls") or [])]
    names = printed_call_names(request, caps)
    if names:
        text, printed = _printed_calls(text, names)
        calls += [{**block, "id": tool_id(message_id, n)} for n, block in enumerate(printed, start=len(calls))]
    counts = ollama_usage(body)
    usage: Usage = {"input_tokens": counts.get("input_tokens", 0), "output_tokens": counts.get("output_tokens", 0)}
    return anthropic_message(
        message_id=message_id, model=model, thinking=thinking, text=text, calls=calls,
        stop=stop_reason(body.get("done_reason"), has_tool_use=bool(calls)), usage=usage,
    )


def _tool_use(call: Any, message_id: str, position: int) -> dict[str, Any]:
    name, arguments = call_parts(call)
    if not name:
        raise UpstreamFormatError(500, "api_error", "Ollama sent a tool call without a function name")
    if arguments is None:
        raise UpstreamFormatError(500, "api_error", f"Ollama sent arguments for {name} that are not a JSON object")
    return {"type": "tool_use", "id": tool_id(message_id, position), "name": name, "input": arguments}


def _printed_calls(text: str, names: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """Calls printed as text, found exactly as the stream translator finds them (ids set by the caller)."""
    buffer = TextCallBuffer(names)
    shown = buffer.feed(text)
    rest, calls = buffer.finish()
    return shown + rest, [{"type": "tool_use", "id": "", "name": n, "input": a} for n, a in calls]
