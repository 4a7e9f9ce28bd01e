"""Ingress validation: only the fields we must trust, everything else carried as sent.

Lenient on purpose: Claude Code adds request fields and block types every month, so only
``model``, ``max_tokens`` and ``messages`` are required and type-checked, and below that only
the shape of ``content`` (a string or a list of objects): nothing inside a block is validated
(marshmallow does not carry ``unknown=INCLUDE`` into ``Nested``, so a nested schema would turn
a new field inside a content block into a 400).
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from app.errors import InvalidRequestError


class _Lenient(Schema):
    class Meta:
        unknown = INCLUDE


class MessagesRequestSchema(_Lenient):
    model = fields.String(required=True, validate=validate.Length(min=1))
    max_tokens = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    messages = fields.List(fields.Dict(), required=True)
    stream = fields.Boolean()
    system = fields.Raw()


class CountTokensRequestSchema(_Lenient):
    model = fields.String(required=True, validate=validate.Length(min=1))
    messages = fields.List(fields.Dict(), required=True)


_MESSAGES = MessagesRequestSchema()
_COUNT = CountTokensRequestSchema()


def validate_messages_request(body: Any) -> dict[str, Any]:
    """Check a ``/v1/messages`` body; raises :class:`InvalidRequestError` naming the field."""
    return _check(_MESSAGES, body)


def validate_count_tokens_request(body: Any) -> dict[str, Any]:
    """Check a ``/v1/messages/count_tokens`` body."""
    return _check(_COUNT, body)


def _check(schema: Schema, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    errors = schema.validate(body)
    if errors:
        field, problems = next(iter(sorted(errors.items())))
        raise InvalidRequestError(f"{field}: {_first(problems)}")
    for index, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant", "system"):
            raise InvalidRequestError(f"messages.{index}.role: must be user or assistant")
        _check_content(index, message.get("content"))
    return body


def _check_content(index: int, content: Any) -> None:
    """Content is a string or a list of blocks (objects); what is inside a block is not checked."""
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequestError(f"messages.{index}.content: must be a string or a list of content blocks")
    for position, block in enumerate(content):
        if not isinstance(block, dict):
            raise InvalidRequestError(f"messages.{index}.content.{position}: must be a content block object")


def _first(problems: Any) -> str:
    if isinstance(problems, list) and problems:
        return str(problems[0])
    if isinstance(problems, dict) and problems:
        key, value = next(iter(problems.items()))
        return f"{key}: {_first(value)}"
    return str(problems)


__all__ = ["ValidationError", "validate_count_tokens_request", "validate_messages_request"]
