"""Transcripts are stored incrementally: N turns give about N rows, a rewrite branches."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from flask import Flask

from app.anthropic.encoded import Encoded
from app.storage import transcripts
from app.storage.db import db
from app.storage.models import Session, Turn
from app.storage.transcripts import record_exchange, session_turns


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@pytest.fixture
def database(app: Flask) -> Any:
    with db.connection_context():
        yield db


def converse(turns: int) -> None:
    history: list[dict[str, Any]] = []
    for n in range(turns):
        history.append(user(f"question {n}"))
        # Claude Code marks the newest block for caching; the marker moves every turn.
        sent = [dict(m) for m in history]
        sent[-1] = {"role": "user", "content": [{**history[-1]["content"][0], "cache_control": {"type": "ephemeral"}}]}
        answer = {"content": [{"type": "text", "text": f"answer {n}"}]}
        record_exchange("s1", "key_a", sent, answer)
        history.append(assistant(f"answer {n}"))


def test_each_turn_is_written_once(database: Any) -> None:
    converse(10)
    assert Turn.select().count() == 20
    assert Session.get_by_id("s1").owner == "key_a"
    turns = session_turns("s1")
    assert [t["content"][0]["text"] for t in turns[:4]] == ["question 0", "answer 0", "question 1", "answer 1"]
    assert [t["position"] for t in turns] == list(range(20))


def test_resending_the_same_history_writes_nothing(database: Any) -> None:
    messages = [user("a"), assistant("b"), user("c")]
    assert record_exchange("s2", None, messages, None) == 3
    assert record_exchange("s2", None, messages, None) == 0
    assert Turn.select().where(Turn.session == "s2").count() == 3


def test_rewritten_history_starts_a_branch_from_the_last_shared_turn(database: Any) -> None:
    record_exchange("s3", None, [user("a"), assistant("b"), user("c"), assistant("d"), user("e")], None)
    compacted = [user("a"), assistant("summary of b..d"), user("e")]
    assert record_exchange("s3", None, compacted, None) == 2
    branch = session_turns("s3")
    assert [t["content"][0]["text"] for t in branch] == ["a", "summary of b..d", "e"]
    first = Turn.get((Turn.session == "s3") & (Turn.position == 0))
    assert Turn.select().where(Turn.parent == first.id).count() == 2


def test_a_rewrite_far_back_in_a_long_history_branches_from_the_last_shared_turn(database: Any) -> None:
    history = [user(f"q{n}") if n % 2 == 0 else assistant(f"a{n}") for n in range(20)]
    record_exchange("s-far", None, history, None)
    rewritten = [*history[:3], assistant("a summary"), *history[4:]]  # 17 new turns from position 3

    assert record_exchange("s-far", None, rewritten, None) == 17
    assert record_exchange("s-far", None, [*rewritten, user("next")], None) == 1
    assert [t["content"][0]["text"] for t in session_turns("s-far")][2:5] == ["q2", "a summary", "q4"]
    third = Turn.get((Turn.session == "s-far") & (Turn.position == 2))
    assert Turn.select().where(Turn.parent == third.id).count() == 2


def test_string_content_and_block_content_are_the_same_turn(database: Any) -> None:
    record_exchange("s4", None, [{"role": "user", "content": "hi"}], None)
    assert record_exchange("s4", None, [user("hi")], None) == 0


def check_another_key_s_session_is_never_written(other: str | None) -> None:
    """A session belongs to the key that created it; ``other`` writes nothing to it."""
    assert record_exchange("owned", "key_a", [user("a")], None) == 1
    assert record_exchange("owned", other, [user("a"), assistant("b"), user("c")], None) == 0
    assert Session.get_by_id("owned").owner == "key_a"
    assert Turn.select().where(Turn.session == "owned").count() == 1
    # ...while its owner goes on, and a keyless session stays keyless.
    assert record_exchange("owned", "key_a", [user("a"), assistant("b"), user("c")], None) == 2
    assert record_exchange("open", None, [user("x")], None) == 1
    assert record_exchange("open", "key_a", [user("x"), assistant("y")], None) == 0
    assert record_exchange("open", None, [user("x"), assistant("y")], None) == 1


def check_a_long_conversation_is_matched_across_lookups() -> None:
    """More turns than one lookup takes (256), and lengths that are not powers of two."""
    history = [user(f"q{n}") if n % 2 == 0 else assistant(f"a{n}") for n in range(301)]
    assert record_exchange("long", None, history, None) == 301
    assert record_exchange("long", None, history, {"content": [{"type": "text", "text": "end"}]}) == 1
    assert record_exchange("long", None, [*history, assistant("end"), user("more")], None) == 1
    assert Turn.select().where(Turn.session == "long").count() == 303
    assert [t["position"] for t in session_turns("long")] == list(range(303))


@pytest.mark.parametrize("other", ["key_b", None])
def test_another_key_s_session_is_never_written(database: Any, other: str | None) -> None:
    check_another_key_s_session_is_never_written(other)


def test_a_long_conversation_is_matched_across_lookups(database: Any) -> None:
    check_a_long_conversation_is_matched_across_lookups()


def check_an_answer_resent_before_it_was_recorded_is_still_the_response() -> None:
    # Instance A answers; the client's next turn reaches instance B, whose writer stores the
    # history (A's answer included) before A's writer records the exchange.
    session = f"s-race-{uuid.uuid4().hex}"
    record_exchange(session, None, [user("a"), assistant("b"), user("c")], None)
    assert record_exchange(session, None, [user("a")], {"content": assistant("b")["content"]}) == 0
    assert [(t["role"], t["source"]) for t in session_turns(session)] == [
        ("user", "client"), ("assistant", "response"), ("user", "client")]


def test_an_answer_resent_before_it_was_recorded_is_still_the_response(database: Any) -> None:
    check_an_answer_resent_before_it_was_recorded_is_still_the_response()


def test_chain_hashes_from_the_notes_are_the_hashes_and_each_turn_is_digested_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex
    history = [user(f"{tag} a"), assistant(f"{tag} b"), user(f"{tag} c")]
    answer = assistant(f"{tag} d")
    plain, grown = transcripts.chain_hashes(history), transcripts.chain_hashes([*history, answer])
    digested: list[object] = []
    real = transcripts.turn_digest

    def counting(message: dict[str, Any]) -> bytes:
        digested.append(message)
        return real(message)

    monkeypatch.setattr(transcripts, "turn_digest", counting)
    first = transcripts.chain_hashes(history, Encoded(history).notes)
    resent = [orjson.loads(orjson.dumps(m)) for m in history]
    again = transcripts.chain_hashes([*resent, answer], Encoded(resent).notes)

    assert first == plain
    assert again == grown
    assert digested == [*history, answer]  # the resent turns came from their notes


def test_an_edited_earlier_turn_changes_its_hash_and_every_later_one() -> None:
    tag = uuid.uuid4().hex
    history = [user(f"{tag} a"), assistant(f"{tag} b"), user(f"{tag} c")]
    before = transcripts.chain_hashes(history, Encoded(history).notes)
    edited = [history[0], assistant(f"{tag} B"), history[2]]

    after = transcripts.chain_hashes(edited, Encoded(edited).notes)

    assert after[0] == before[0]
    assert after[1] != before[1]
    assert after[2] != before[2]
    assert after == transcripts.chain_hashes(edited)


def test_record_exchange_with_notes_stores_what_it_stores_without(database: Any) -> None:
    tag = uuid.uuid4().hex
    history = [user(f"{tag} a"), assistant(f"{tag} b"), user(f"{tag} c")]
    record_exchange("plain", None, history, None)
    assert record_exchange("noted", None, history, None, Encoded(history).notes) == 3
    assert record_exchange("noted", None, [*history, assistant("d"), user("e")], None,
                           Encoded([*history, assistant("d"), user("e")]).notes) == 2
    plain, noted = session_turns("plain"), session_turns("noted")
    assert [t["content"] for t in noted[:3]] == [t["content"] for t in plain]
