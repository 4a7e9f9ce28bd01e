"""Ingress validation: every field the gateway reads is type-checked, everything else is carried as sent.

Lenient on purpose: Claude Code adds request fields and block types every month, so unknown
fields, unknown block types and unknown keys inside known objects pass untouched. What the
translators, the token counter, routing and the session store read is checked for its type
here, so a wrong type is a 400 naming the field (``messages.0.content.1.source: Not a valid
mapping type.``) instead of a crash further in. Nested schemas are *instances* made with
``unknown=INCLUDE``: marshmallow does not carry a class's ``Meta.unknown`` into ``Nested``.

The body is parsed here too (:func:`parse_json`), with its nesting capped at
:data:`MAX_JSON_DEPTH`, and two shapes the seed project accepted are made Anthropic's
(:func:`adopt_seed_shapes`): an OpenAI-style ``tool_choice`` and a missing ``max_tokens``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
from cachetools import LRUCache
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from app.anthropic.encoded import Encoded
from app.errors import InvalidRequestError
from app.web.resent import ResentHistory

# orjson serialises at most 254 levels; the pipeline wraps a body (upstream requests, cache keys,
# transcripts) a few levels deeper and walks content recursively, so a client gets half of that.
MAX_JSON_DEPTH = 128
ORJSON_MAX_DEPTH = 254
SEEN_ITEMS = 4096  # distinct tool lists and content lists remembered as valid, per worker
MAX_MODEL_CHARS = 128  # the width of the usage rows' model column
ROLES = ("user", "assistant", "system")


TOO_DEEP = f"Request body nests deeper than {MAX_JSON_DEPTH} levels."
MESSAGE_DEPTH = MAX_JSON_DEPTH - 2  # a message sits inside the body and its messages list
RESENT = ResentHistory()


def parse_json(raw: bytes) -> Any:
    """The parsed body; raises :class:`InvalidRequestError` for bad JSON or nesting past :data:`MAX_JSON_DEPTH`."""
    value = _loads(raw)
    if too_deep(value):
        raise InvalidRequestError(TOO_DEEP)
    return value


def parse_messages_request(raw: bytes) -> tuple[Any, Encoded | None]:
    """:func:`parse_json` for a ``/v1/messages`` body, and its messages encoded (None when they are
    not a list): the depth check serialises each message anyway, and those bytes are kept.

    Messages resent from an earlier body are taken as parsed then (:mod:`app.web.resent`).
    """
    reused = RESENT.parse(raw, _new_parts)
    if reused is not None:
        body, given, resent = reused
        if too_deep({**body, "messages": []}):
            raise InvalidRequestError(TOO_DEEP)
        RESENT.remember(raw, given, resent)
        return body, given
    value = _loads(raw)
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list):
        if too_deep(value):
            raise InvalidRequestError(TOO_DEEP)
        return value, None
    parts = _new_parts(messages)
    if parts is None or too_deep({**value, "messages": []}):
        raise InvalidRequestError(TOO_DEEP)
    given = Encoded(messages, parts)
    RESENT.remember(raw, given)
    return value, given


def _new_parts(messages: list[Any]) -> list[bytes] | None:
    return parts_within(messages, MESSAGE_DEPTH)


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from exc


def too_deep(value: Any) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than :data:`MAX_JSON_DEPTH`.

    orjson serialises at most :data:`ORJSON_MAX_DEPTH` levels: ``value`` wrapped in the difference
    serialises only when it is shallow enough. That walk runs in C (~20 µs for a 20 KB body, where a
    Python walk took 300 µs), and nothing recurses in Python, so no input can exhaust the stack.
    """
    probe = value
    for _ in range(ORJSON_MAX_DEPTH - MAX_JSON_DEPTH):
        probe = [probe]
    try:
        orjson.dumps(probe)
    except orjson.JSONEncodeError:
        return True
    return False


def parts_within(values: list[Any], depth: int) -> list[bytes] | None:
    """Each value's compact JSON bytes, or None when one nests deeper than ``depth``.

    The depth check of :func:`too_deep`, one value at a time: each value is serialised inside
    one chain of wrapping lists, and its own bytes are cut out of the result.
    """
    margin = ORJSON_MAX_DEPTH - depth
    inner: list[Any] = [None]
    probe = inner
    for _ in range(margin - 1):
        probe = [probe]
    parts = []
    for value in values:
        inner[0] = value
        try:
            parts.append(orjson.dumps(probe)[margin:-margin])
        except orjson.JSONEncodeError:
            return None
    return parts


# -- fields -----------------------------------------------------------------------------------


class StrictNumber(fields.Field):
    """An int or a float, never a string or a boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a valid number.")
        return value


class Content(fields.Field):
    """Message content: a string, or a list of content blocks each checked by its ``type``."""

    def __init__(self, *, text_allowed: bool = True, **kwargs: Any) -> None:
        self.text_allowed = text_allowed
        self.shape = "must be a string or a list of content blocks" if text_allowed else \
            "must be a list of content blocks"
        super().__init__(error_messages={"null": self.shape}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and self.text_allowed:
            return value
        if not isinstance(value, list):
            raise ValidationError(self.shape)
        key = orjson.dumps(value)
        if _SEEN_CONTENT.known(key):  # the same system prompt on every request
            return value
        problems = {index: errors for index, block in enumerate(value) if (errors := block_errors(block))}
        if problems:
            raise ValidationError(problems)
        _SEEN_CONTENT.remember(key)
        return value


def block_errors(block: Any) -> dict[str, Any] | list[str]:
    """What is wrong with one content block (empty when nothing): its known fields' types."""
    if not isinstance(block, dict):
        return ["must be a content block object"]
    kind = block.get("type")
    if kind is not None and not isinstance(kind, str):
        return {"type": ["Not a valid string."]}
    schema = _BLOCKS.get(kind) if kind else None
    return schema.validate(block) if schema is not None else {}


class SeenValid:
    """JSON values (as their bytes) already found valid, the most recent :data:`SEEN_ITEMS` of them."""

    def __init__(self) -> None:
        self._valid: LRUCache[bytes, bool] = LRUCache(SEEN_ITEMS)
        self._lock = threading.Lock()

    def known(self, key: bytes) -> bool:
        """Whether ``key`` was found valid before."""
        with self._lock:
            return key in self._valid

    def remember(self, key: bytes) -> None:
        """Note that ``key`` is valid."""
        with self._lock:
            self._valid[key] = True


_SEEN_CONTENT = SeenValid()


class RememberedList(fields.List):
    """A list whose items are each checked once per distinct content.

    Claude Code resends the whole conversation (and the same tools) on every request: an item that
    serialises to bytes already found valid is not checked again, so a request costs the new turns,
    not the history. Errors keep marshmallow's shape (``{index: errors}``).
    """

    def __init__(self, inner: fields.Field, **kwargs: Any) -> None:
        super().__init__(inner, **kwargs)
        self._seen = SeenValid()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        problems: dict[int, Any] = {}
        for index, item in enumerate(value):
            key = orjson.dumps(item)
            if self._seen.known(key):
                continue
            try:
                self.inner.deserialize(item, **kwargs)
            except ValidationError as error:
                problems[index] = error.messages
                continue
            self._seen.remember(key)
        if problems:
            raise ValidationError(problems)
        return value


class ListOnly(fields.Field):
    """A list whose items are checked elsewhere (``fields.List`` would visit each one)."""

    default_error_messages = {"invalid": "Not a valid list."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


def _nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema(unknown=INCLUDE), **kwargs)


# -- content blocks ---------------------------------------------------------------------------


class _Lenient(Schema):
    error_messages = {"type": "must be an object"}

    class Meta:
        unknown = INCLUDE


class MediaSource(_Lenient):
    type = fields.String(required=True)
    data = fields.String()
    url = fields.String()
    media_type = fields.String()
    file_id = fields.String()
    content = Content()


class TextBlock(_Lenient):
    text = fields.String(required=True)


class ImageBlock(_Lenient):
    source = _nested(MediaSource, required=True)


class DocumentBlock(_Lenient):
    source = _nested(MediaSource, required=True)
    title = fields.String(allow_none=True)
    context = fields.String(allow_none=True)


class ToolUseBlock(_Lenient):
    id = fields.String(required=True)
    name = fields.String(required=True)
    input = fields.Dict()


class ToolResultBlock(_Lenient):
    tool_use_id = fields.String(required=True)
    content = Content()
    is_error = fields.Boolean()


class ThinkingBlock(_Lenient):
    thinking = fields.String(required=True)
    signature = fields.String()


class RedactedThinkingBlock(_Lenient):
    data = fields.String(required=True)


class ToolReferenceBlock(_Lenient):
    tool_name = fields.String(required=True)


class SearchResultBlock(_Lenient):
    title = fields.String()
    source = fields.String()
    content = Content(text_allowed=False)


_BLOCKS: dict[str, Schema] = {
    kind: schema(unknown=INCLUDE) for kind, schema in {
        "text": TextBlock,
        "image": ImageBlock,
        "document": DocumentBlock,
        "tool_use": ToolUseBlock,
        "server_tool_use": ToolUseBlock,
        "mcp_tool_use": ToolUseBlock,
        "tool_result": ToolResultBlock,
        "mcp_tool_result": ToolResultBlock,
        "thinking": ThinkingBlock,
        "redacted_thinking": RedactedThinkingBlock,
        "tool_reference": ToolReferenceBlock,
        "search_result": SearchResultBlock,
    }.items()
}


# -- the request ------------------------------------------------------------------------------


class Message(_Lenient):
    role = fields.String(required=True, validate=validate.OneOf(ROLES, error="must be user or assistant"))
    content = Content(required=True)


class Metadata(_Lenient):
    user_id = fields.String(allow_none=True)


class Thinking(_Lenient):
    type = fields.String(required=True)
    budget_tokens = fields.Integer(strict=True)


class OutputFormat(_Lenient):
    type = fields.String(required=True)
    schema = fields.Dict()


class OutputConfig(_Lenient):
    effort = fields.String()
    format = _nested(OutputFormat, allow_none=True)


class ToolChoice(_Lenient):
    type = fields.String(required=True)
    name = fields.String()
    disable_parallel_tool_use = fields.Boolean()


class Tool(_Lenient):
    type = fields.String(allow_none=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    input_schema = fields.Dict()


class _Conversation(_Lenient):
    # The name goes back in a response header (X-Lynkr-Model) when it passes through unmapped.
    model = fields.String(required=True, validate=[
        validate.Length(min=1, max=MAX_MODEL_CHARS),
        validate.Regexp(r"^[\x21-\x7e]+$", error="must be printable ASCII without spaces"),
    ])
    messages = ListOnly(required=True)  # each message: _message_problems
    system = Content()
    tools = RememberedList(_nested(Tool))
    tool_choice = _nested(ToolChoice)
    thinking = _nested(Thinking)
    metadata = _nested(Metadata)
    output_config = _nested(OutputConfig)


class MessagesRequestSchema(_Conversation):
    max_tokens = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    stream = fields.Boolean()
    temperature = StrictNumber()
    top_p = StrictNumber()
    top_k = StrictNumber()
    stop_sequences = fields.List(fields.String())
    context_management = fields.Dict()


class CountTokensRequestSchema(_Conversation):
    pass


_MESSAGES = MessagesRequestSchema()
_COUNT = CountTokensRequestSchema()
_MESSAGE = Message(unknown=INCLUDE)


def validate_messages_request(body: Any, given: Encoded | None = None) -> dict[str, Any]:
    """Check a ``/v1/messages`` body; raises :class:`InvalidRequestError` naming the field.

    ``given`` is the body's messages encoded already (:class:`~app.anthropic.encoded.Encoded`).
    """
    return _check(_MESSAGES, body, given)


def validate_count_tokens_request(body: Any) -> dict[str, Any]:
    """Check a ``/v1/messages/count_tokens`` body."""
    return _check(_COUNT, body, None)


def _check(schema: Schema, body: Any, given: Encoded | None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    errors: dict[str, Any] = schema.validate(body)
    problems = _message_problems(body.get("messages"), given)
    if problems:
        errors["messages"] = problems
    if errors:
        raise InvalidRequestError(first_problem(errors))
    return body


def _message_problems(messages: Any, given: Encoded | None) -> dict[int, Any]:
    """What is wrong with each message, by index; a message noted valid before is not checked again.

    Claude Code resends the whole conversation on every request: a request costs its new turns,
    not the history (a message is known by its exact bytes, so an edited one is checked anew).
    """
    if not isinstance(messages, list):
        return {}
    encoded = given if given is not None and given.matches(messages) else Encoded(messages)
    problems: dict[int, Any] = {}
    for index, (message, notes) in enumerate(zip(messages, encoded.notes, strict=True)):
        if "valid" in notes:
            continue
        errors = _MESSAGE.validate(message)
        if errors:
            problems[index] = errors
        else:
            notes["valid"] = True
    return problems


def first_problem(errors: Any, path: str = "") -> str:
    """The first of marshmallow's nested errors as ``dotted.path: message``."""
    if isinstance(errors, dict) and errors:
        key, value = min(errors.items(), key=lambda item: str(item[0]))
        if key == "_schema":  # the object itself, not one of its fields
            return first_problem(value, path)
        return first_problem(value, f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        return first_problem(errors[0], path)
    return f"{path}: {errors}" if path else str(errors)


# -- the seed project's shapes -----------------------------------------------------------------

_OPENAI_CHOICE_MODES = {"auto": "auto", "none": "none", "required": "any"}


def adopt_seed_shapes(body: Any, max_output_tokens: Callable[[str], int]) -> Any:
    """``body`` with the seed project's shapes made Anthropic's: a missing ``max_tokens`` becomes
    ``max_output_tokens(model)``, and an OpenAI ``tool_choice`` (``{"type": "function",
    "function": {"name": …}}``, ``"auto"``, ``"required"``, ``"none"``) becomes Anthropic's.
    Anything else, a body that is not an object included, is returned as it came."""
    if not isinstance(body, dict):
        return body
    model = body.get("model")
    if "max_tokens" not in body and isinstance(model, str) and model:
        body["max_tokens"] = max_output_tokens(model)
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice in _OPENAI_CHOICE_MODES:
        body["tool_choice"] = {"type": _OPENAI_CHOICE_MODES[choice]}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            body["tool_choice"] = {"type": "tool", "name": name}
    return body


__all__ = [
    "MAX_JSON_DEPTH",
    "ValidationError",
    "adopt_seed_shapes",
    "parse_json",
    "parse_messages_request",
    "validate_count_tokens_request",
    "validate_messages_request",
]
