"""What OpenAI's chat-completions endpoint rejects with a 400, as one pure check.

Used by the fake OpenAI upstream's strict mode. :func:`strict_violation` returns the first
problem as ``(message, param, code)`` — the fields of OpenAI's error body — or None when the
real API would accept the request. The rules follow what api.openai.com answers for
``gpt-4o``-class models; :class:`Strictness` switches the few that depend on the model or server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Violation = tuple[str, str | None, str | None]  # message, param, code

TOP_LEVEL = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "user", "reasoning_effort",
    "response_format", "seed", "n", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "metadata", "store", "service_tier",
})
ROLES = ("system", "developer", "user", "assistant", "tool")
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal"})
PART_TYPES = frozenset({"text", "image_url", "file", "input_audio"})
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_CHOICE_MODES = ("none", "auto", "required")
MAX_STOP = 4


@dataclass(frozen=True)
class Strictness:
    """Model- or server-dependent rules.

    ``reasoning_content``: assistant messages may carry ``reasoning_content`` (DeepSeek, Kimi).
    ``reasoning_effort``: the model takes ``reasoning_effort`` (o-series, gpt-5); gpt-4o does not.
    ``max_output_tokens``: the largest ``max_tokens`` / ``max_completion_tokens`` the model allows.
    """

    reasoning_content: bool = False
    reasoning_effort: bool = False
    max_output_tokens: int | None = None


def strict_violation(body: Any, rules: Strictness | None = None) -> Violation | None:
    """The first reason OpenAI would answer 400 to this body, or None."""
    return next(_violations(body, rules or Strictness()), None)


def _violations(body: Any, rules: Strictness) -> Iterator[Violation]:
    if not isinstance(body, dict):
        yield "We could not parse the JSON body of your request.", None, None
        return
    for key in sorted(body):
        if key not in TOP_LEVEL:
            yield f"Unrecognized request argument supplied: {key}", key, "unknown_parameter"
    if not isinstance(body.get("model"), str) or not body["model"]:
        yield "you must provide a model parameter", "model", None
    yield from _limits(body, rules)
    yield from _sampling(body)
    tools = body.get("tools")
    names = yield from _tools(tools)
    yield from _tool_choice(body, names)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        yield "[] is too short - 'messages'", "messages", None
        return
    yield from _messages(messages, rules)


def _limits(body: dict[str, Any], rules: Strictness) -> Iterator[Violation]:
    if "max_tokens" in body and "max_completion_tokens" in body:
        yield ("max_tokens and max_completion_tokens cannot both be set; use max_completion_tokens.",
               "max_tokens", "invalid_value")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if key not in body or value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            yield f"Invalid '{key}': expected an integer >= 1, got {value!r}.", key, "invalid_value"
        elif rules.max_output_tokens is not None and value > rules.max_output_tokens:
            yield (f"{key} is too large: {value}. This model supports at most {rules.max_output_tokens} "
                   f"completion tokens, whereas you provided {value}.", key, "invalid_value")
    if "reasoning_effort" in body and not rules.reasoning_effort:
        yield ("Unsupported parameter: 'reasoning_effort' is not supported with this model.", "reasoning_effort",
               "unsupported_parameter")
    stream = body.get("stream")
    if "stream" in body and stream is not None and not isinstance(stream, bool):
        yield f"Invalid type for 'stream': expected a boolean, got {stream!r}.", "stream", "invalid_type"
    if "stream_options" in body and body["stream_options"] is not None:
        if stream is not True:
            yield ("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options",
                   "invalid_value")
        options = body["stream_options"]
        if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
            yield f"Invalid 'stream_options': {options!r}.", "stream_options", "invalid_value"


def _sampling(body: dict[str, Any]) -> Iterator[Violation]:
    for key, top in (("temperature", 2), ("top_p", 1)):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not 0 <= value <= top):
            yield f"Invalid '{key}': must be a number between 0 and {top}, got {value!r}.", key, "invalid_value"
    stop = body.get("stop")
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        yield f"Invalid type for 'stop': {stop!r}.", "stop", "invalid_type"
    elif len(stop) > MAX_STOP:
        yield f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, but got an " \
              f"array with length {len(stop)} instead.", "stop", "array_above_max_length"


def _tools(tools: Any) -> Iterator[Violation]:
    """Checks ``tools``; returns (via ``yield from``) the function names declared."""
    names: list[str] = []
    if tools is None:
        return names
    if not isinstance(tools, list):
        yield f"Invalid type for 'tools': expected an array, got {tools!r}.", "tools", "invalid_type"
        return names
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or set(tool) - {"type", "function"}:
            yield f"Invalid '{where}': expected {{'type': 'function', 'function': {{...}}}}.", where, "invalid_value"
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            yield f"Missing required parameter: '{where}.function'.", f"{where}.function", "missing_required_parameter"
            continue
        extra = sorted(set(function) - {"name", "description", "parameters", "strict"})
        if extra:
            yield f"Unrecognized request argument supplied: {where}.function.{extra[0]}", where, "unknown_parameter"
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            yield (f"Invalid '{where}.function.name': string does not match pattern. Expected a string that "
                   f"matches the pattern '^[a-zA-Z0-9_-]+$' of length 1..64, got {name!r}.",
                   f"{where}.function.name", "invalid_value")
            continue
        names.append(name)
        if "parameters" in function:
            yield from _parameters(function["parameters"], name, where)
    return names


def _parameters(parameters: Any, name: str, where: str) -> Iterator[Violation]:
    if not isinstance(parameters, dict) or not parameters or parameters.get("type") != "object":
        kind = parameters.get("type") if isinstance(parameters, dict) else type(parameters).__name__
        yield (f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', "
               f"got 'type: \"{kind}\"'.", f"{where}.function.parameters", "invalid_function_parameters")


def _tool_choice(body: dict[str, Any], names: list[str]) -> Iterator[Violation]:
    choice = body.get("tool_choice")
    if choice is not None and not body.get("tools"):
        yield "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", \
              "tool_choice", None
        return
    if body.get("parallel_tool_calls") is not None and not body.get("tools"):
        yield ("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
               "specified.", "parallel_tool_calls", None)
    if choice is None or choice in TOOL_CHOICE_MODES:
        return
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(named, str):
        yield f"Invalid value for 'tool_choice': {choice!r}.", "tool_choice", "invalid_value"
    elif named not in names:
        yield (f"Invalid value for 'tool_choice': function '{named}' not found in 'tools'.", "tool_choice",
               "invalid_value")


# -- messages ---------------------------------------------------------------------------------


def _messages(messages: list[Any], rules: Strictness) -> Iterator[Violation]:
    allowed = MESSAGE_KEYS | ({"reasoning_content"} if rules.reasoning_content else set())
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            yield f"Invalid type for '{where}': expected an object.", where, "invalid_type"
            continue
        role = message.get("role")
        if role not in ROLES:
            yield (f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', 'user', 'tool', and "
                   "'developer'.", f"{where}.role", "invalid_value")
            continue
        for key in sorted(set(message) - allowed):
            yield f"Unrecognized request argument supplied: {where}.{key}", f"{where}.{key}", "unknown_parameter"
        yield from _message_shape(message, role, where)
    yield from _pairing(messages)


def _message_shape(message: dict[str, Any], role: str, where: str) -> Iterator[Violation]:
    if "tool_calls" in message and role != "assistant":
        yield f"Invalid parameter: '{where}.tool_calls' is only allowed on assistant messages.", where, None
    if "tool_call_id" in message and role != "tool":
        yield f"Invalid parameter: '{where}.tool_call_id' is only allowed on tool messages.", where, None
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        yield f"Missing required parameter: '{where}.tool_call_id'.", f"{where}.tool_call_id", \
              "missing_required_parameter"
    content = message.get("content")
    if content is None:
        if role != "assistant" or not message.get("tool_calls"):
            yield f"Invalid value for '{where}.content': expected a string, got null.", f"{where}.content", None
    elif isinstance(content, list):
        yield from _parts(content, role, where)
    elif not isinstance(content, str):
        yield f"Invalid type for '{where}.content': expected one of a string or array.", f"{where}.content", \
              "invalid_type"
    if role == "assistant" and "tool_calls" in message:
        yield from _calls(message["tool_calls"], where)


def _parts(parts: list[Any], role: str, where: str) -> Iterator[Violation]:
    for j, part in enumerate(parts):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES:
            yield (f"Invalid value: {kind!r}. Supported values are: 'text', 'image_url', 'input_audio', and "
                   "'file'.", f"{at}.type", "invalid_value")
        elif kind != "text" and role != "user":
            yield f"Invalid '{at}': {kind} content parts are only allowed in user messages.", at, "invalid_value"
        elif kind == "text" and not isinstance(part.get("text"), str):
            yield f"Missing required parameter: '{at}.text'.", f"{at}.text", "missing_required_parameter"
        elif kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            yield f"Missing required parameter: '{at}.image_url.url'.", f"{at}.image_url", \
                  "missing_required_parameter"


def _calls(calls: Any, where: str) -> Iterator[Violation]:
    if not isinstance(calls, list) or not calls:
        yield f"Invalid '{where}.tool_calls': empty array. Expected an array with minimum length 1.", \
              f"{where}.tool_calls", "empty_array"
        return
    for k, call in enumerate(calls):
        at = f"{where}.tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or call.get("type") != "function" or not isinstance(function, dict):
            yield f"Invalid '{at}': expected {{'id', 'type': 'function', 'function'}}.", at, "invalid_value"
            continue
        if not isinstance(call.get("id"), str) or not call["id"]:
            yield f"Missing required parameter: '{at}.id'.", f"{at}.id", "missing_required_parameter"
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            yield f"Invalid '{at}.function.name': string does not match pattern, got {name!r}.", \
                  f"{at}.function.name", "invalid_value"
        if not isinstance(arguments, str):
            yield f"Invalid type for '{at}.function.arguments': expected a string, but got {type(arguments).__name__}" \
                  " instead.", f"{at}.function.arguments", "invalid_type"
            continue
        try:
            json.loads(arguments)
        except ValueError:
            yield f"Invalid '{at}.function.arguments': not valid JSON: {arguments[:80]!r}.", \
                  f"{at}.function.arguments", "invalid_value"


def _pairing(messages: list[Any]) -> Iterator[Violation]:
    """Tool messages answer the calls of the assistant message right before them, every one of them."""
    open_ids: list[str] = []  # calls of the current assistant message not yet answered
    answerable: set[str] = set()  # calls of the current assistant message (tool messages may follow)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in answerable:
                yield ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                       f"with 'tool_calls' (messages[{i}].tool_call_id={call_id!r}).", f"messages.[{i}].role", None)
            elif call_id not in open_ids:
                yield f"Duplicate response for tool_call_id {call_id!r} at messages[{i}].", f"messages.[{i}]", None
            else:
                open_ids.remove(call_id)
            continue
        if open_ids:
            yield ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                   f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                   f"{', '.join(open_ids)}", f"messages.[{i}].role", None)
        calls = message.get("tool_calls") if role == "assistant" else None
        ids = [c.get("id") for c in calls or [] if isinstance(c, dict) and isinstance(c.get("id"), str)]
        if len(set(ids)) != len(ids):
            yield f"Duplicate tool_call ids in messages[{i}].tool_calls: {ids}.", f"messages.[{i}].tool_calls", None
        open_ids, answerable = list(dict.fromkeys(ids)), set(ids)
    if open_ids:
        yield ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
               f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_ids)}",
               "messages", None)
