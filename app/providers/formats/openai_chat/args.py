"""Tool-call arguments from chat-completions upstreams: parsing, repair and streaming checks.

Arguments arrive as a JSON string that is sometimes broken (local models put raw newlines in
strings, use single quotes, or stop early). :func:`parse_arguments` repairs what it can with
``json_repair``; :class:`ArgumentStream` checks streamed fragments so only text that can still
become a JSON object reaches the client; :func:`parse_text_tool_calls` finds calls that a model
printed as text instead of using the tools API.
"""

from __future__ import annotations

import re
from typing import Any

import json_repair
import orjson

from app.providers.formats.openai_chat.reply import partial_suffix

_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_LITERALS = {"t": "true", "f": "false", "n": "null"}
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_WHITESPACE = frozenset(" \t\r\n")
TOOL_CALL_MARKUP = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
TOOL_CALL_OPEN = "<tool_call>"


def parse_arguments(raw: Any, *, repair: bool = True) -> dict[str, Any] | None:
    """Arguments as a dict: parsed, unwrapped when double-encoded, repaired; None if hopeless."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {} if raw is None or isinstance(raw, str) else None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = json_repair.loads(raw) if repair else None
    if isinstance(value, str) and value.strip().startswith("{"):
        # Some servers encode the arguments twice: a JSON string holding the JSON object.
        return parse_arguments(value, repair=repair)
    return value if isinstance(value, dict) else None


class ArgumentStream:
    """Follows one call's streamed arguments and says which fragments may be forwarded.

    A fragment is forwarded only if the arguments so far can still become a JSON object; raw
    control characters inside strings are escaped on the way. Once a fragment breaks the JSON
    nothing more is forwarded (``broken``) and the caller decides at the end of the call.
    """

    def __init__(self) -> None:
        self.raw: list[str] = []
        self.sent: list[str] = []
        self.broken = False
        self._stack: list[str] = []
        self._state = "start"
        self._key = False
        self._pending = ""  # the rest of a literal, or the escape sequence in progress

    @property
    def complete(self) -> bool:
        """Whether the forwarded text is a whole JSON object."""
        return not self.broken and self._state == "done"

    def feed(self, fragment: str) -> str:
        """Record ``fragment``; return what may be forwarded now ("" when nothing)."""
        self.raw.append(fragment)
        if self.broken or not fragment:
            return ""
        out: list[str] = []
        i = 0
        while i < len(fragment):
            i = self._step(fragment, i, out)
            if i < 0:
                self.broken = True
                return ""
        text = "".join(out)
        self.sent.append(text)
        return text

    def _step(self, text: str, i: int, out: list[str]) -> int:
        """Consume from ``text[i]``; return the next position, or -1 when the JSON breaks."""
        if self._state == "string":
            return self._string(text, i, out)
        char = text[i]
        if self._state == "number":
            if char in _NUMBER_CHARS:
                out.append(char)
                return i + 1
            self._state = "after"
        if self._state == "literal":
            if char != self._pending[0]:
                return -1
            self._pending = self._pending[1:]
            self._state = "literal" if self._pending else "after"
        elif char not in _WHITESPACE and not self._structural(char):
            return -1
        out.append(char)
        return i + 1

    def _structural(self, char: str) -> bool:
        state = self._state
        if (state == "start" and char == "{") or (state in ("value", "array") and char in "{["):
            self._stack.append(char)
            self._state = "object" if char == "{" else "array"
        elif state in ("object", "key") and char == '"':
            self._state, self._key = "string", True
        elif state == "colon" and char == ":":
            self._state = "value"
        elif state in ("value", "array") and char == '"':
            self._state, self._key = "string", False
        elif state in ("value", "array") and (char.isdigit() or char == "-"):
            self._state = "number"
        elif state in ("value", "array") and char in _LITERALS:
            self._state, self._pending = "literal", _LITERALS[char][1:]
        elif state == "after" and char == ",":
            self._state = "key" if self._stack[-1] == "{" else "value"
        elif char in "}]" and (state == "after" or state == {"}": "object", "]": "array"}[char]):
            return self._close(char)
        else:
            return False
        return True

    def _close(self, char: str) -> bool:
        if not self._stack or {"{": "}", "[": "]"}[self._stack.pop()] != char:
            return False
        self._state = "after" if self._stack else "done"
        return True

    def _string(self, text: str, i: int, out: list[str]) -> int:
        run = _STRING_RUN.match(text, i)
        if run and not self._pending:
            out.append(run.group())
            return run.end()
        char = text[i]
        if self._pending:  # inside an escape: "\" then one char, or "\u" then 4 hex digits
            ok = char in '"\\/bfnrtu' if self._pending == "\\" else char in "0123456789abcdefABCDEF"
            if not ok:
                return -1
            self._pending = "uuuu" if char == "u" and self._pending == "\\" else self._pending[1:]
        elif char == "\\":
            self._pending = "\\"
        elif char == '"':
            self._state = "colon" if self._key else "after"
        else:  # a raw control character: local models emit these; JSON wants them escaped
            out.append(_CONTROL_ESCAPES.get(char, f"\\u{ord(char):04x}"))
            return i + 1
        out.append(char)
        return i + 1


def parse_text_tool_calls(text: str, names: dict[str, str]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """Tool calls a model printed as text: ``<tool_call>{...}</tool_call>`` or a whole JSON message.

    ``names`` maps every name the model may use (upstream and original) to the original tool
    name; anything naming another tool stays text. Returns the remaining text and the calls.
    """
    calls: list[tuple[str, dict[str, Any]]] = []

    def take(match: re.Match[str]) -> str:
        call = _call_from_json(match.group(1), names, repair=True, need_arguments=False)
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    rest = TOOL_CALL_MARKUP.sub(take, text) if TOOL_CALL_OPEN in text else text
    if calls:
        return rest.strip(), calls
    whole = _call_from_json(text.strip(), names, repair=False, need_arguments=True)
    return ("", [whole]) if whole else (text, [])


def _call_from_json(
    text: str, names: dict[str, str], *, repair: bool, need_arguments: bool
) -> tuple[str, dict[str, Any]] | None:
    if not text.startswith("{"):
        return None
    value = parse_arguments(text, repair=repair)
    if not value or not isinstance(value.get("name"), str) or value["name"] not in names:
        return None
    key = next((k for k in ("arguments", "parameters") if k in value), None)
    if key is None and need_arguments:
        return None
    arguments = parse_arguments(value.get(key) if key else {}, repair=repair)
    return (names[value["name"]], arguments) if arguments is not None else None


class TextCallBuffer:
    """Holds streamed text that may turn out to be a printed tool call, until the end.

    Text streams through unless the message starts with ``{`` (it may be one JSON call) or a
    ``<tool_call>`` tag appears; from there on it is held and parsed by :meth:`finish`.
    """

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self._pending = ""
        self._holding = False
        self._emitted = False

    def feed(self, text: str) -> str:
        """Take a text fragment; return the part that is safe to show now."""
        self._pending += text
        if self._holding:
            return ""
        if not self._emitted:
            head = self._pending.lstrip()
            if not head or head.startswith("{"):
                self._holding = bool(head)
                return ""
        start = self._pending.find(TOOL_CALL_OPEN)
        if start >= 0:
            self._holding = True
        else:
            start = len(self._pending) - partial_suffix(self._pending, TOOL_CALL_OPEN)
        out, self._pending = self._pending[:start], self._pending[start:]
        self._emitted = self._emitted or bool(out)
        return out

    def finish(self) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """The held text, parsed: remaining text and calls."""
        pending, self._pending = self._pending, ""
        if not pending.strip():
            return pending if self._emitted else "", []
        return parse_text_tool_calls(pending, self.names)
