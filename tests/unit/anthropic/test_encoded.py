"""Messages serialised once per request; notes shared by content, bounded; the body spliced from the parts."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from app.anthropic.encoded import ENTRY_OVERHEAD, ContentMemo, Encoded, encoded, noted, splice_body


def make_messages(n: int = 3) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex  # notes are per process: content no other test sends
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": [{"type": "text", "text": f"{tag} {i}"}]}
            for i in range(n)]


def test_each_part_is_the_messages_compact_json() -> None:
    messages = make_messages()
    given = Encoded(messages)

    assert given.parts == [orjson.dumps(m) for m in messages]
    assert encoded("not a list") is None


def test_parts_and_notes_are_handed_out_for_the_very_same_messages_only() -> None:
    messages = make_messages()
    given = Encoded(messages)

    assert given.parts_for(messages) is given.parts
    assert given.parts_for(list(messages)) is given.parts  # another list of the same objects
    assert given.notes_for(messages) is given.notes
    assert given.parts_for([dict(m) for m in messages]) is None  # equal content, other objects
    assert given.parts_for(messages[:-1]) is None
    assert given.notes_for({"messages": messages}) is None


def test_reusing_takes_the_bytes_of_the_same_objects_and_encodes_the_others() -> None:
    messages = make_messages()
    indented = [orjson.dumps(m, option=orjson.OPT_INDENT_2) for m in messages]  # not what dumps writes
    given = Encoded(messages, indented)
    spliced = [{"role": "assistant", "content": "the real step"}, *messages[1:]]

    assert given.reusing(list(messages)) is given
    assert given.reusing(messages, {}) is given  # no stored steps spliced in
    derived = given.reusing(spliced)
    assert derived.parts == [orjson.dumps(spliced[0]), *indented[1:]]
    assert derived.notes[1:] == given.notes[1:]
    assert all(a is b for a, b in zip(derived.notes[1:], given.notes[1:], strict=True))
    assert derived.matches(spliced)
    assert not derived.matches(messages)


def test_the_same_content_shares_its_notes_and_an_edit_does_not() -> None:
    messages = make_messages()
    first = Encoded(messages)
    first.notes[1]["tokens"] = 7

    resent = Encoded([orjson.loads(orjson.dumps(m)) for m in messages])
    edited = [*messages[:1], {**messages[1], "content": "edited"}, *messages[2:]]

    assert resent.notes[1] is first.notes[1]
    assert resent.notes[1]["tokens"] == 7
    assert "tokens" not in Encoded(edited).notes[1]
    assert Encoded(edited).notes[0] is first.notes[0]


def test_noted_computes_an_aspect_once() -> None:
    notes: dict[str, Any] = {}
    calls: list[str] = []

    def compute(message: str) -> int:
        calls.append(message)
        return 42

    assert (noted(notes, "tokens", compute, "hi"), noted(notes, "tokens", compute, "hi")) == (42, 42)
    assert calls == ["hi"]


def test_the_memo_is_bounded_by_bytes_least_recently_used_first() -> None:
    memo = ContentMemo(max_bytes=2 * (10 + ENTRY_OVERHEAD))
    a, b, c = b"a" * 10, b"b" * 10, b"c" * 10
    notes_a, notes_b = memo.notes([a, b])
    memo.notes([a])  # a is now the most recent
    notes_a["valid"] = notes_b["valid"] = True

    memo.notes([c])  # evicts b

    assert len(memo) == 2
    assert memo.notes([a])[0] is notes_a
    assert memo.notes([b])[0] == {}


def test_a_key_larger_than_the_memo_is_not_kept() -> None:
    memo = ContentMemo(max_bytes=100)
    big = b"x" * 100

    first = memo.notes([big])[0]
    first["valid"] = True

    assert memo.notes([big])[0] == {}
    assert len(memo) == 0


def test_splice_body_gives_the_bytes_orjson_gives() -> None:
    messages = make_messages(4)
    given = Encoded(messages)
    translated = [messages[0], {"role": "assistant", "content": [{"type": "text", "text": "rewritten ü"}]},
                  *messages[2:]]
    body = {"model": "upstream", "max_tokens": 10, "messages": translated, "system": [{"type": "text", "text": "s"}],
            "tools": [], "metadata": {"user_id": "u"}, "stream": True}

    assert splice_body(body, messages, given.parts) == orjson.dumps(body)
    assert splice_body({**body, "messages": []}, messages, given.parts) == orjson.dumps({**body, "messages": []})
    assert splice_body({"model": "m"}, messages, given.parts) == orjson.dumps({"model": "m"})


def test_splice_body_copies_the_parts_of_unchanged_messages() -> None:
    messages = make_messages(2)
    parts = [b'{"role":"user","content":"FROM THE PART"}', orjson.dumps(messages[1])]

    spliced = splice_body({"messages": messages}, messages, parts)

    assert spliced == b'{"messages":[{"role":"user","content":"FROM THE PART"},' + parts[1] + b"]}"
