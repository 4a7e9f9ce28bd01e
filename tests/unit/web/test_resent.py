"""A resent history is taken as parsed before; whatever the body, the result is orjson's parse of it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest

from app.errors import InvalidRequestError
from app.web import schemas
from app.web.resent import ResentHistory
from app.web.schemas import parse_messages_request


@pytest.fixture(autouse=True)
def history(monkeypatch: pytest.MonkeyPatch) -> ResentHistory:
    fresh = ResentHistory()
    monkeypatch.setattr(schemas, "RESENT", fresh)
    return fresh


def turn(role: str, text: str, *, marked: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if marked:
        block["cache_control"] = {"type": "ephemeral"}
    return {"role": role, "content": [block]}


def conversation(turns: int, tag: str = "") -> list[dict[str, Any]]:
    tag = tag or uuid.uuid4().hex
    return [turn("user" if i % 2 == 0 else "assistant", f"{tag} turn {i} ü", marked=i == turns - 1)
            for i in range(turns)]


def body(messages: list[Any], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": messages, "system": [{"type": "text", "text": "s"}],
            "tools": [{"name": "Read", "input_schema": {"type": "object", "properties": {"messages": {}}}}],
            "metadata": {"user_id": "u"}, "max_tokens": 100, **fields}


def parsed(raw: bytes) -> tuple[Any, list[bytes]]:
    """Parse ``raw`` and check the result against orjson's parse and serialisation of it."""
    value, given = parse_messages_request(raw)
    assert value == orjson.loads(raw)
    assert list(value) == list(orjson.loads(raw))  # the same key order
    assert given is not None
    assert given.matches(value["messages"])
    assert given.parts == [orjson.dumps(m) for m in value["messages"]]
    return value, given.parts


def test_the_same_body_again_takes_every_message_as_parsed_before() -> None:
    raw = orjson.dumps(body(conversation(6)))
    first, _ = parsed(raw)
    again, _ = parsed(raw)

    assert all(a is b for a, b in zip(again["messages"], first["messages"], strict=True))
    assert again is not first
    assert again["tools"] is not first["tools"]  # the rest is parsed anew


def test_a_grown_conversation_reuses_all_but_the_turn_that_lost_its_marker() -> None:
    tag = uuid.uuid4().hex
    first, _ = parsed(orjson.dumps(body(conversation(6, tag))))
    grown = [*conversation(6, tag)[:5], turn("assistant", f"{tag} turn 5 ü"), turn("user", "new"),
             turn("assistant", "newer", marked=True)]

    value, _ = parsed(orjson.dumps(body(grown)))

    assert all(a is b for a, b in zip(value["messages"][:5], first["messages"][:5], strict=True))
    assert value["messages"][5] is not first["messages"][5]


def test_an_edited_earlier_turn_is_parsed_and_every_turn_after_it() -> None:
    tag = uuid.uuid4().hex
    first, _ = parsed(orjson.dumps(body(conversation(6, tag))))
    edited = conversation(6, tag)
    edited[2]["content"][0]["text"] = "rewritten"

    value, _ = parsed(orjson.dumps(body(edited)))

    assert value["messages"][:2] == first["messages"][:2]
    assert [m is first["messages"][i] for i, m in enumerate(value["messages"])][1:] == [True] + [False] * 4


@pytest.mark.parametrize("variant", ["spaces", "empty key", "second messages key", "number prefix",
                                     "other key order", "no array"])
def test_bodies_of_other_layouts_are_parsed_whole_and_right(variant: str) -> None:
    messages = conversation(4)
    parsed(orjson.dumps(body(messages)))
    if variant == "spaces":
        raw = json.dumps(body(messages), ensure_ascii=False).encode()
    elif variant == "empty key":
        raw = orjson.dumps(body(messages))[:-1] + b',"":1}'
    elif variant == "second messages key":
        raw = orjson.dumps(body(messages))[:-1] + b',"messages":[{"role":"user","content":"last wins"}]}'
    elif variant == "number prefix":
        parsed(orjson.dumps(body([1])))
        raw = orjson.dumps(body([12, 1]))
    elif variant == "other key order":
        raw = orjson.dumps({"messages": messages, "model": "m", "max_tokens": 1})
    else:
        value, given = parse_messages_request(orjson.dumps({**body(messages), "messages": "hi"}))
        assert (value["messages"], given) == ("hi", None)
        return
    parsed(raw)
    parsed(raw)  # and once more, as a repeat of itself


def test_a_new_turn_nesting_too_deep_is_refused() -> None:
    messages = conversation(4)
    parsed(orjson.dumps(body(messages)))
    nested: Any = "x"
    for _ in range(schemas.MAX_JSON_DEPTH):
        nested = [nested]

    with pytest.raises(InvalidRequestError, match=r"^Request body nests deeper than 128 levels\.$"):
        parse_messages_request(orjson.dumps(body([*messages, {"role": "user", "content": nested}])))
    with pytest.raises(InvalidRequestError, match=r"^Request body nests deeper than 128 levels\.$"):
        parse_messages_request(orjson.dumps(body(messages, system=nested)))


def test_a_resent_history_with_a_broken_rest_is_invalid_json() -> None:
    raw = orjson.dumps(body(conversation(4)))
    parsed(raw)

    with pytest.raises(InvalidRequestError, match=r"^Request body is not valid JSON: "):
        parse_messages_request(raw[:-10])


def test_the_history_is_bounded_by_bytes(history: ResentHistory) -> None:
    small = ResentHistory(max_bytes=2000)  # three of these bodies
    first = orjson.dumps(body(conversation(4)))
    _, given = parse_messages_request(first)
    assert given is not None
    small.remember(first, given)
    assert small.parse(first, lambda new: [orjson.dumps(m) for m in new]) is not None

    for _ in range(3):
        other = orjson.dumps(body(conversation(4)))
        small.remember(other, parse_messages_request(other)[1])  # type: ignore[arg-type]

    assert small.parse(first, lambda new: [orjson.dumps(m) for m in new]) is None


@pytest.mark.parametrize(("new_turn", "kept"), [
    (b'{"role":"user","content":"next"}', True),
    (b'{"role": "user", "content": "next"}', False),  # not compact: its bytes are not its part
])
def test_a_grown_body_is_remembered_only_when_its_new_turns_are_compact(new_turn: bytes, kept: bool) -> None:
    messages = conversation(4)
    raw = orjson.dumps(body(messages))
    parsed(raw)
    start = raw.index(b'"messages":[') + len(b'"messages":[')
    end = start + len(b",".join(orjson.dumps(m) for m in messages))
    grown = raw[:end] + b"," + new_turn + raw[end:]

    second, _ = parsed(grown)
    third, _ = parsed(grown)

    assert (third["messages"][-1] is second["messages"][-1]) is kept
    assert third["messages"][0] is second["messages"][0]
