"""Property test: generated chat-completions streams always become valid Anthropic streams.

Each example is a compact chunk sequence mixing the shapes upstreams really send: reasoning,
text (with ``<think>`` tags and printed-call markup), parallel tool calls whose fragments
interleave by index, text inside a call, usage-only and empty chunks, and every way a stream
can end (usage chunk, ``[DONE]``, EOF after a finish reason, early EOF, an error chunk).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import ModelCapabilities
from app.providers.formats.openai_chat.convert import StreamTranslator

KINDS = ("interleaved", "text_in_call", "reasoning", "usage_only", "empty_choices", "early_eof", "error")
ENDINGS = ("usage_only", "finish_done", "finish_eof", "usage_in_finish", "done_only", "early_eof", "error")
TOOLS = [{"name": name, "input_schema": {"type": "object"}} for name in ("Bash", "Read", "mcp__x.y__z")]
REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "go"}],
    "tools": TOOLS,
}
TEXTS = [
    "Hello",
    " world",
    "\n",
    "<think>",
    "plan",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "{",
    "}",
    '{"name": "Bash", "arguments": {"command": "ls"}}',
    "<",
    "é✓",
    "",
]
BROKEN = ["{'command': 'ls'}", '{"command": "ls"', '{"command": tru}', "[]", "garbage"]
ARGUMENTS = [
    {},
    {"command": "ls -la"},
    {"path": "/tmp/é✓.txt", "n": 3},
    {"flag": True, "none": None, "list": [1, 2]},
    {"nested": {"deep": ["a", {"b": -1.5e3}]}, "quote": 'say "hi"\n\t\\'},
]
NAMES = ["Bash", "Read", "mcp__x_y__z_" + "0" * 8]


@dataclass
class Case:
    items: list[Any] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> arguments, for valid calls
    text_tool_calls: bool = False
    ending: str = ""


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def usage(**extra: Any) -> dict[str, Any]:
    return {
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 8}},
        **extra,
    }


def split(rng: random.Random, text: str) -> list[str]:
    """``text`` cut at up to three random places (empty pieces included, as upstreams send them)."""
    cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, 3)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def call_fragments(rng: random.Random, case: Case, index: int) -> list[dict[str, Any]]:
    call_id = f"call_{index}"
    if rng.random() < 0.1:
        raw = rng.choice(BROKEN)
    else:
        case.calls[call_id] = rng.choice(ARGUMENTS)
        raw = orjson.dumps(case.calls[call_id]).decode()
    pieces = split(rng, raw)
    first: dict[str, Any] = {"index": index, "id": call_id, "type": "function", "function": {"name": rng.choice(NAMES)}}
    if rng.random() < 0.5:  # arguments bundled with the id and name
        first["function"]["arguments"] = pieces.pop(0)
    rest = [{"index": index, "function": {"arguments": piece}} for piece in pieces]
    return [chunk({"tool_calls": [call]}) for call in [first, *rest]]


def merge(rng: random.Random, lists: list[list[dict[str, Any]]], interleave: bool) -> list[dict[str, Any]]:
    if not interleave:
        return [item for sub in lists for item in sub]
    out: list[dict[str, Any]] = []
    queues = [list(sub) for sub in lists]
    while any(queues):
        out.append(rng.choice([queue for queue in queues if queue]).pop(0))
    return out


@st.composite
def upstream_streams(draw: st.DrawFn) -> Case:
    """A handful of drawn choices label the case; a drawn seed shapes the details."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    flags = draw(st.lists(st.booleans(), min_size=5, max_size=5))
    case = Case(text_tool_calls=flags[0], ending=draw(st.sampled_from(ENDINGS)))
    if flags[1]:
        case.kinds.add("reasoning")
        case.items += [chunk({"reasoning_content": piece}) for piece in split(rng, "Let me think.")]
    case.items += [chunk({"content": rng.choice(TEXTS)}) for _ in range(rng.randint(0, 3))]
    calls = [call_fragments(rng, case, index) for index in range(draw(st.integers(0, 3)))]
    if len(calls) >= 2 and flags[2]:
        case.kinds.add("interleaved")
    if calls and flags[3]:
        case.kinds.add("text_in_call")
        calls[0].insert(1, chunk({"content": rng.choice(TEXTS[:3])}))
    case.items += merge(rng, calls, "interleaved" in case.kinds)
    if flags[4]:
        case.kinds.add("empty_choices")
        case.items.insert(rng.randint(0, len(case.items)), {"choices": []})
    case.items += ending_items(case.ending)
    case.kinds |= {case.ending} & set(KINDS)
    return case


def ending_items(ending: str) -> list[Any]:
    return {
        "usage_only": [chunk(finish="stop"), {"choices": [], **usage()}, "[DONE]"],
        "finish_done": [chunk(finish="tool_calls"), "[DONE]"],
        "finish_eof": [chunk(finish="stop")],
        "usage_in_finish": [chunk(finish="stop", **usage())],
        "done_only": ["[DONE]"],
        "early_eof": [],
        "error": [{"error": {"code": 502, "message": "Provider disconnected"}}, chunk({"content": "late"})],
    }[ending]


def replay(case: Case) -> list[dict[str, Any]]:
    builder = StreamBuilder(message_id="msg_prop", model="claude-sonnet-4-5", input_tokens=3)
    caps = ModelCapabilities(text_tool_calls=case.text_tool_calls)
    translator = StreamTranslator(builder, request=REQUEST, caps=caps)
    events: list[dict[str, Any]] = []
    for item in case.items:
        events += translator.done() if item == "[DONE]" else translator.feed(item)
    return events + translator.close()


def check(case: Case, accumulate: Callable[[list[dict[str, Any]]], Any]) -> None:
    events = replay(case)
    validate_stream(events)
    if case.ending in ("early_eof", "error"):
        assert events[-1]["type"] == "error"
    if events[-1]["type"] != "message_stop":
        return
    message = accumulate(events)
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert all(isinstance(block.input, dict) for block in tool_uses)
    assert (message.stop_reason == "tool_use") == bool(tool_uses)
    inputs = {block.id: block.input for block in tool_uses}
    for call_id, arguments in case.calls.items():
        assert inputs[call_id] == arguments


def test_generated_streams_are_valid_anthropic_streams(make_sdk_message: Callable[[list[Any]], Any]) -> None:
    counts: Counter[str] = Counter()

    @settings(
        max_examples=10_000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(upstream_streams())
    def run(case: Case) -> None:
        counts["__total__"] += 1
        counts.update(case.kinds)
        for kind in sorted(case.kinds):
            event(kind)
        check(case, make_sdk_message)

    run()
    assert counts["__total__"] >= 10_000
    rare = {kind: counts[kind] / counts["__total__"] for kind in KINDS if counts[kind] < 0.05 * counts["__total__"]}
    assert not rare, f"kinds generated in under 5% of cases: {rare}"
