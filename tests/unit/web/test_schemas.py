"""Ingress validation: known fields type-checked and named in the 400, unknown fields and blocks carried."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from app.anthropic.encoded import Encoded
from app.errors import InvalidRequestError
from app.web.schemas import (
    MAX_JSON_DEPTH,
    adopt_seed_shapes,
    parse_json,
    parse_messages_request,
    too_deep,
    validate_count_tokens_request,
    validate_messages_request,
)

VALID = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def messages(*content: Any) -> dict[str, Any]:
    return {**VALID, "messages": [{"role": "user", "content": list(content)}]}


def test_a_valid_body_comes_back_as_sent_with_unknown_fields_and_blocks() -> None:
    body = {**VALID, "future_field": {"x": 1}, "stream": True, "temperature": 1, "top_p": 0.5,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "brand_new_block", "anything": [1, 2]},
                                                      {"type": "text", "text": "t", "citations": None}]},
                         {"role": "assistant", "content": "ok"}, {"role": "system", "content": "s"}]}
    assert validate_messages_request(body) is body


@pytest.mark.parametrize(("body", "message"), [
    ([], "Request body must be a JSON object."),
    ({"max_tokens": 1, "messages": []}, "model: Missing data for required field."),
    ({**VALID, "model": ""}, "model: Length must be between 1 and 128."),
    ({**VALID, "model": "x" * 129}, "model: Length must be between 1 and 128."),
    ({**VALID, "model": "gpt\nX-Injected: 1"}, "model: must be printable ASCII without spaces"),
    ({**VALID, "model": "mod\u00e8le"}, "model: must be printable ASCII without spaces"),
    ({**VALID, "output_config": {"format": "json"}}, "output_config.format: must be an object"),
    ({**VALID, "output_config": {"format": {"type": "json_schema", "schema": []}}},
     "output_config.format.schema: Not a valid mapping type."),
    ({**VALID, "max_tokens": "10"}, "max_tokens: Not a valid integer."),
    ({**VALID, "max_tokens": 0}, "max_tokens: Must be greater than or equal to 1."),
    ({**VALID, "messages": "hi"}, "messages: Not a valid list."),
    ({**VALID, "messages": ["hi"]}, "messages.0: must be an object"),
    ({**VALID, "messages": [{"content": "x"}]}, "messages.0.role: Missing data for required field."),
    ({**VALID, "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role: must be user or assistant"),
    ({**VALID, "messages": [{"role": "user", "content": 5}]},
     "messages.0.content: must be a string or a list of content blocks"),
    ({**VALID, "messages": [{"role": "user", "content": None}]},
     "messages.0.content: must be a string or a list of content blocks"),
    (messages({"type": "text", "text": "a"}, "b"), "messages.0.content.1: must be a content block object"),
    (messages({"type": 7}), "messages.0.content.0.type: Not a valid string."),
    (messages({"type": "image", "source": {"type": 5}}), "messages.0.content.0.source.type: Not a valid string."),
    (messages({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}),
     "messages.0.content.0.content.0.text: Missing data for required field."),
    ({**VALID, "stream": "maybe"}, "stream: Not a valid boolean."),
    ({**VALID, "temperature": "1"}, "temperature: Not a valid number."),
    ({**VALID, "temperature": True}, "temperature: Not a valid number."),
    ({**VALID, "tools": [{"input_schema": {}}]}, "tools.0.name: Missing data for required field."),
    ({**VALID, "tool_choice": "auto"}, "tool_choice: must be an object"),
    ({**VALID, "system": 5}, "system: must be a string or a list of content blocks"),
])
def test_invalid_messages_requests_name_the_first_field(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        validate_messages_request(body)
    assert (raised.value.message, raised.value.status) == (message, 400)


def test_count_tokens_needs_no_max_tokens_but_checks_the_rest() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}
    assert validate_count_tokens_request(body) is body
    with pytest.raises(InvalidRequestError, match=r"^messages: Missing data for required field\.$"):
        validate_count_tokens_request({"model": "m"})


def test_parse_json() -> None:
    assert parse_json(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(InvalidRequestError, match=r"^Request body is not valid JSON: unexpected end of data"):
        parse_json(b"{")
    with pytest.raises(InvalidRequestError, match=r"^Request body nests deeper than 128 levels\.$"):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    deepest = parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert not too_deep(deepest)
    assert too_deep([deepest])


def test_depth_counts_containers_not_scalars() -> None:
    assert not too_deep("scalar")
    nested: object = {"a": 1}
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert not too_deep(nested)
    assert too_deep({"b": nested})


def test_the_seed_projects_shapes_are_adopted() -> None:
    assert adopt_seed_shapes({"model": "m", "tool_choice": "required"}, lambda model: 4096) == {
        "model": "m", "tool_choice": {"type": "any"}, "max_tokens": 4096}
    assert adopt_seed_shapes({"model": "m", "max_tokens": 5, "tool_choice": {
        "type": "function", "function": {"name": "Read"}}}, lambda model: 1) == {
        "model": "m", "max_tokens": 5, "tool_choice": {"type": "tool", "name": "Read"}}
    assert adopt_seed_shapes({"model": "m", "max_tokens": 5, "tool_choice": "auto"}, lambda model: 1)[
        "tool_choice"] == {"type": "auto"}
    assert adopt_seed_shapes({"tool_choice": "sometimes"}, lambda model: 1) == {"tool_choice": "sometimes"}
    assert adopt_seed_shapes([1], lambda model: 1) == [1]



def test_a_message_or_tool_list_seen_valid_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.web import schemas

    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"name": "Read", "input_schema": {"type": "object"}}]}
    validate_messages_request(body)
    checked: list[object] = []
    real = schemas.Message._deserialize

    def counting(self: object, *args: object, **kwargs: object) -> object:
        checked.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(schemas.Message, "_deserialize", counting)
    validate_messages_request({**body, "messages": [*body["messages"], {"role": "assistant", "content": "Hello"}]})
    assert checked == [{"role": "assistant", "content": "Hello"}]  # only the new turn
    with pytest.raises(InvalidRequestError, match=r"^messages\.1\.content\.0\.text: "):
        validate_messages_request({**body, "messages": [*body["messages"],
                                                        {"role": "user", "content": [{"type": "text", "text": 5}]}]})


def test_validity_is_noted_per_message_content_and_an_edited_one_is_checked_again() -> None:
    tag = uuid.uuid4().hex
    history = [{"role": "user", "content": f"{tag} a"}, {"role": "assistant", "content": f"{tag} b"}]
    body = {**VALID, "messages": history}
    given = Encoded(history)

    assert validate_messages_request(body, given) is body
    assert [notes.get("valid") for notes in given.notes] == [True, True]
    edited = [history[0], {"role": "assistant", "content": [{"type": "text", "text": 5}]}]
    with pytest.raises(InvalidRequestError, match=r"^messages\.1\.content\.0\.text: Not a valid string\.$"):
        validate_messages_request({**VALID, "messages": edited}, Encoded(edited))
    other = [{"role": "tool", "content": f"{tag} other"}]  # not what ``given`` encodes: encoded anew
    with pytest.raises(InvalidRequestError, match=r"^messages\.0\.role: must be user or assistant$"):
        validate_messages_request({**VALID, "messages": other}, given)


def test_a_messages_body_is_parsed_with_each_message_serialised_once() -> None:
    body = {**VALID, "messages": [{"role": "user", "content": "hé"}, {"role": "assistant", "content": [{"a": [1]}]}]}
    parsed, given = parse_messages_request(orjson.dumps(body))

    assert parsed == body
    assert given is not None
    assert given.matches(parsed["messages"])
    assert given.parts == [orjson.dumps(m) for m in body["messages"]]
    assert parse_messages_request(b'{"messages": "hi"}') == ({"messages": "hi"}, None)
    with pytest.raises(InvalidRequestError, match=r"^Request body is not valid JSON: "):
        parse_messages_request(b"{")


@pytest.mark.parametrize("where", ["message", "system"])
def test_a_messages_body_has_the_same_depth_limit(where: str) -> None:
    def body_nesting(levels: int) -> dict[str, Any]:
        """A body whose deepest point is ``levels`` deep (the body itself is level 1)."""
        nested: Any = []
        for _ in range(levels - 4):
            nested = [nested]
        if where == "message":  # body, messages, message, content: 4 levels
            return {**VALID, "messages": [{"role": "user", "content": nested}]}
        return {**VALID, "system": [{"x": nested}]}  # body, system, block, x's list

    deepest, deeper = body_nesting(MAX_JSON_DEPTH), body_nesting(MAX_JSON_DEPTH + 1)
    assert not too_deep(deepest)
    assert too_deep(deeper)
    assert parse_messages_request(orjson.dumps(deepest))[0] == deepest
    with pytest.raises(InvalidRequestError, match=r"^Request body nests deeper than 128 levels\.$"):
        parse_messages_request(orjson.dumps(deeper))
