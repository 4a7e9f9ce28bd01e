"""Ingress fuzzing with hypothesis: the real recorded Claude Code bodies, mutated — a wrong type at
any path, deep nesting, huge strings, odd Unicode, keys dropped or added, bytes cut or garbled —
sent to /v1/messages of an app over each provider family's fake upstream.

Every answer: never a 5xx, never slower than ``SLOWEST_ANSWER_S``, an error is the Anthropic
envelope carrying the request id, a stream keeps the event grammar, and the request leaves exactly
one usage row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from tests.reliability.fuzzing import (
    FAMILIES,
    Target,
    check_answer,
    check_one_usage_row,
    fuzz_settings,
    post_messages,
    target,
)

pytestmark = pytest.mark.slow
RECORDED = [json.loads(path.read_text())["body"] for path in sorted(FIXTURES.glob("v*-request*.json"))]
Path = tuple[str | int, ...]

wrong_types = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64), st.floats(allow_nan=False),
    st.text(max_size=12), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=6)), max_size=3),
)
odd_text = st.one_of(
    st.text(st.characters(codec=None), min_size=1, max_size=40),  # surrogates, controls, private use
    st.sampled_from(["\x00", "\u202e", "\ufeff\u200b", "e\u0301\u0301\u0301", "\U0001f600" * 50, "\\u0000", "\ud800"]),
)


@pytest.fixture(scope="module", params=FAMILIES)
def fuzz_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with target(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as answered_by:
        yield answered_by


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path in a JSON value, the value itself first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from paths(child, (*prefix, key))


def replace(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new``; untouched branches shared."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = replace(value[head], rest, new)  # type: ignore[index]
    return copy


def node(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A recorded body with one to three mutations at drawn paths."""
    body: Any = draw(st.sampled_from(RECORDED))
    for _ in range(draw(st.integers(1, 3))):
        every = list(paths(body))
        path = draw(st.sampled_from(every))
        kind = draw(st.sampled_from(["type", "deep", "huge", "unicode", "drop", "extra"]))
        current = node(body, path)
        if kind == "type":
            body = replace(body, path, draw(wrong_types))
        elif kind == "deep":
            levels = draw(st.integers(1, 300))
            wrapped = current
            for level in range(levels):
                wrapped = [wrapped] if level % 2 else {"nest": wrapped}
            body = replace(body, path, wrapped)
        elif kind == "huge":
            size = draw(st.sampled_from([10**4, 10**6, 4 * 10**6]))
            body = replace(body, path, draw(st.sampled_from("xé\U0001f600")) * size)
        elif kind == "unicode":
            body = replace(body, path, draw(odd_text))
        elif kind == "drop" and path:
            parent = node(body, path[:-1])
            if isinstance(parent, dict):
                body = replace(body, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
            else:
                body = replace(body, path[:-1], [v for i, v in enumerate(parent) if i != path[-1]])
        elif kind == "extra" and isinstance(current, dict):
            body = replace(body, path, {**current, draw(st.text(max_size=10)): draw(wrong_types)})
    return body


def encode(body: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \\udxxx escapes, which the gateway must refuse cleanly.
    return json.dumps(body, ensure_ascii=True).encode()


@fuzz_settings(ci_examples=15)
@given(body=mutated())
def test_mutated_claude_code_bodies_get_an_answer_or_the_envelope(fuzz_target: Target, body: Any) -> None:
    response = post_messages(fuzz_target.app, encode(body))
    check_answer(response)
    check_one_usage_row(fuzz_target, response.headers["request-id"])


@fuzz_settings(ci_examples=10)
@given(recorded=st.sampled_from(RECORDED), cut=st.floats(0, 1), garbage=st.binary(max_size=64))
def test_cut_and_garbled_bytes_are_a_400_envelope(fuzz_target: Target, recorded: Any, cut: float,
                                                  garbage: bytes) -> None:
    raw = encode(recorded)
    broken = raw[: int(len(raw) * cut)] + garbage
    response = post_messages(fuzz_target.app, broken)
    check_answer(response)
    assert response.status_code == 400 or broken == raw
    check_one_usage_row(fuzz_target, response.headers["request-id"])


def test_the_unmutated_recordings_are_answered(fuzz_target: Target) -> None:
    for body in RECORDED[:4]:
        response = post_messages(fuzz_target.app, encode(body))
        check_answer(response)
        assert response.status_code == 200


header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300)


@fuzz_settings(ci_examples=10)
@given(name=st.sampled_from(["anthropic-beta", "anthropic-version", "x-claude-code-session-id", "x-session-id",
                             "X-Request-ID", "X-Request-Start", "x-api-key", "authorization", "accept-encoding"]),
       value=header_values, stream=st.booleans())
def test_odd_header_values_get_an_answer_or_the_envelope(fuzz_target: Target, name: str, value: str,
                                                         stream: bool) -> None:
    body = encode({**RECORDED[4], "stream": stream})
    earlier = Counter(fuzz_target.writes)
    response = fuzz_target.app.test_client().post("/v1/messages", data=body, content_type="application/json",
                                                  headers={name: value})
    response.get_data()
    check_answer(response)
    check_one_usage_row(fuzz_target, response.headers["request-id"], earlier)
