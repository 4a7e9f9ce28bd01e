"""Anchors of shown assistant messages, and splicing the stored steps back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from flask import Flask

from app.agent import splice as splice_module
from app.agent.splice import TraceCache, anchor, forget_trace, save_trace, splice, trace_session
from app.anthropic.encoded import Encoded
from app.storage.db import db


def shown(text: str, *tool_ids: str) -> dict[str, Any]:
    content = [{"type": "text", "text": text}] + [{"type": "tool_use", "id": i, "name": "Write", "input": {}}
                                                  for i in tool_ids]
    return {"role": "assistant", "content": content}


@pytest.fixture
def database(app: Flask) -> Iterator[None]:
    with db.connection_context():
        yield


def test_anchor_is_the_tool_ids_when_there_are_any() -> None:
    assert anchor(shown("a", "toolu_1", "toolu_2")) == anchor(shown("other text", "toolu_2", "toolu_1"))
    assert anchor(shown("a", "toolu_1")) != anchor(shown("a", "toolu_2"))


def test_anchor_of_text_ignores_whitespace_and_block_splits() -> None:
    split = {"role": "assistant",
             "content": [{"type": "text", "text": "Done  with"}, {"type": "text", "text": "\nit."}]}
    assert anchor(split) == anchor({"role": "assistant", "content": "Done with it."})
    assert anchor({"role": "assistant", "content": []}) is None


def test_splice_replaces_the_shown_message_and_owes_results_to_the_next_user_turn(database: None) -> None:
    real = [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "fs_read", "input": {}},
                                              {"type": "tool_use", "id": "toolu_c", "name": "Write", "input": {}}]}]
    owed = [{"type": "tool_result", "tool_use_id": "toolu_s", "content": "file text"}]
    save_trace("s1", shown("", "toolu_c"), real, owed)
    client_result = {"type": "tool_result", "tool_use_id": "toolu_c", "content": "ok"}
    history = [{"role": "user", "content": "go"}, shown("", "toolu_c"), {"role": "user", "content": [client_result]}]
    assert splice("s1", history).messages == [history[0], real[0],
                                              {"role": "user", "content": [*owed, client_result]}]
    assert splice("other-session", history).messages is history
    assert splice(None, history).messages is history


def test_a_message_without_a_trace_is_left_alone(database: None) -> None:
    history = [{"role": "user", "content": "hi"}, shown("hello")]
    assert splice("s1", history).messages is history


def test_a_resent_messages_anchor_is_noted_and_traces_are_read_only_for_stored_anchors(
        database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_r", "name": "fs_read", "input": {}}]}]
    save_trace("s2", shown("done"), real, [])
    history = [{"role": "user", "content": "go"}, shown("done"), {"role": "user", "content": "more"},
               shown("never stored")]
    notes = Encoded(history).notes
    assert splice("s2", history, notes).messages == [history[0], real[0], history[2], history[3]]
    assert (notes[1]["anchor"], notes[3]["anchor"]) == (anchor(history[1]), anchor(history[3]))
    assert "anchor" not in notes[0]

    monkeypatch.setattr(splice_module, "anchor", lambda message: pytest.fail("hashed again"))
    queries: list[str] = []
    monkeypatch.setattr(db.obj, "execute_sql", recording(db.obj.execute_sql, queries))
    assert splice("s2", history, notes).messages == [history[0], real[0], history[2], history[3]]
    assert len(queries) == 2
    assert "IN" in queries[1]
    queries.clear()
    assert splice("s2", [history[0], history[3]], [notes[0], notes[3]]).messages == [history[0], history[3]]
    assert len(queries) == 1  # no stored anchor among them: no trace read


def recording(execute: Callable[..., Any], queries: list[str]) -> Callable[..., Any]:
    def run(sql: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args, **kwargs)
    return run


def check_every_message_with_a_stored_trace_is_replaced() -> None:
    """Shared with the PostgreSQL suite (tests/integration/test_postgres.py)."""
    session, other = f"s-{uuid.uuid4().hex}", f"s-{uuid.uuid4().hex}"
    steps = {n: [{"role": "assistant", "content": [{"type": "text", "text": f"real {n}"}]}] for n in range(3)}
    for n, real in steps.items():
        save_trace(session, shown(f"shown {n}"), real, [])
    save_trace(other, shown("shown 3"), [{"role": "assistant", "content": "not this session's"}], [])
    history = [message for n in range(4) for message in ({"role": "user", "content": f"ask {n}"}, shown(f"shown {n}"))]

    assert splice(session, history).messages == [history[0], *steps[0], history[2], *steps[1], history[4],
                                                 *steps[2], history[6], history[7]]


def test_every_message_with_a_stored_trace_is_replaced(database: None) -> None:
    check_every_message_with_a_stored_trace_is_replaced()


def check_a_kept_trace_is_reused_until_it_is_stored_again() -> None:
    """Shared with the PostgreSQL suite: the cache's version is the row's id and creation time."""
    session = f"s-{uuid.uuid4().hex}"
    cache = TraceCache()
    first = [{"role": "assistant", "content": [{"type": "text", "text": "first steps"}]}]
    save_trace(session, shown("shown"), first, [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}])
    history = [{"role": "user", "content": "go"}, shown("shown"), {"role": "user", "content": "next"}]

    spliced = splice(session, history, cache=cache)
    again = splice(session, history, cache=cache)
    assert again.messages == spliced.messages == [history[0], *first, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}, {"type": "text", "text": "next"}]}]
    assert again.messages[1] is spliced.messages[1]  # the kept step, not parsed again
    assert again.parts == {id(again.messages[1]): orjson.dumps(first[0])}

    second = [{"role": "assistant", "content": [{"type": "text", "text": "second steps"}]}]
    save_trace(session, shown("shown"), second, [])
    assert splice(session, history, cache=cache).messages == [history[0], *second, history[2]]


def test_a_kept_trace_is_reused_until_it_is_stored_again(database: None) -> None:
    check_a_kept_trace_is_reused_until_it_is_stored_again()


def test_a_kept_trace_costs_one_query_and_the_cache_is_bounded(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TraceCache(max_bytes=3000)
    big = [{"role": "assistant", "content": [{"type": "text", "text": "x" * 2000}]}]
    small = [{"role": "assistant", "content": [{"type": "text", "text": "small"}]}]
    save_trace("s4", shown("big"), big, [])
    save_trace("s4", shown("small"), small, [])
    history = [{"role": "user", "content": "a"}, shown("big"), {"role": "user", "content": "b"}, shown("small")]
    assert splice("s4", history, cache=cache).messages == [history[0], *big, history[2], *small]

    queries: list[str] = []
    monkeypatch.setattr(db.obj, "execute_sql", recording(db.obj.execute_sql, queries))
    assert splice("s4", history[2:], cache=cache).messages == [history[2], *small]
    assert len(queries) == 1  # the anchors; the small trace was kept
    queries.clear()
    assert splice("s4", history[:2], cache=cache).messages == [history[0], *big]
    assert len(queries) == 2  # larger than the whole cache: read again


def test_a_sessions_traces_are_kept_per_api_key() -> None:
    assert trace_session("sess-1", "sk-a") != trace_session("sess-1", "sk-b")
    assert trace_session("sess-1", None) != trace_session("sess-1", "sk-a")
    assert trace_session("sess-1", "sk-a") == trace_session("sess-1", "sk-a")
    assert len(trace_session("s" * 128, "k" * 128) or "") == 64  # fits the session column whatever its inputs
    assert trace_session(None, "sk-a") is None
    assert trace_session("", "sk-a") is None


def test_anchors_past_one_lookup_are_read_in_chunks(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splice_module, "LOOKUP_CHUNK", 4)
    steps = {n: [{"role": "assistant", "content": f"real {n}"}] for n in range(6)}
    for n, real in steps.items():
        save_trace("s5", shown(f"shown {n}"), real, [])
    history = [message for n in range(7) for message in ({"role": "user", "content": f"ask {n}"}, shown(f"shown {n}"))]
    expected = [m for n in range(7) for m in ({"role": "user", "content": f"ask {n}"},
                                              *(steps[n] if n in steps else [shown(f"shown {n}")]))]
    params: list[int] = []
    monkeypatch.setattr(db.obj, "execute_sql", counting_params(db.obj.execute_sql, params))
    assert splice("s5", history).messages == expected
    # Each lookup binds the session and its anchors: the 7 anchors' versions in a chunk of 4 and
    # one of 3 padded to 4, then the 6 traces in a chunk of 4 and one of 2.
    assert params == [5, 5, 5, 3]


def test_two_shown_messages_with_one_anchor_get_the_stored_steps_once(database: None) -> None:
    first = [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "fs_read", "input": {}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}]},
             {"role": "assistant", "content": "Done."}]
    second = [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2", "name": "fs_read", "input": {}}]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "b"}]},
              {"role": "assistant", "content": "Done."}]
    save_trace("s6", shown("Done."), first, [])
    save_trace("s6", shown("Done."), second, [])  # the same anchor: it replaces the first
    history = [{"role": "user", "content": "one"}, shown("Done."), {"role": "user", "content": "two"}, shown("Done."),
               {"role": "user", "content": "three"}]

    assert splice("s6", history).messages == [history[0], history[1], history[2], *second, history[4]]


def test_forget_trace_drops_only_that_anchors_trace(database: None) -> None:
    kept = [{"role": "assistant", "content": "kept steps"}]
    save_trace("s7", shown("Done."), [{"role": "assistant", "content": "old steps"}], [])
    save_trace("s7", shown("Other."), kept, [])
    forget_trace("s7", shown("Done."))
    history = [{"role": "user", "content": "a"}, shown("Done."), {"role": "user", "content": "b"}, shown("Other.")]
    assert splice("s7", history).messages == [*history[:3], *kept]
    assert splice("s7", history).stored == frozenset({anchor(shown("Other."))})


def counting_params(execute: Callable[..., Any], counts: list[int]) -> Callable[..., Any]:
    def run(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        counts.append(len(params or ()))
        return execute(sql, params, *args, **kwargs)
    return run
