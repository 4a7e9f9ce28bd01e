"""The agent loop over stub model steps, a stub budget and one stub tool: exact op sequences."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from app.agent import loop as loop_module
from app.agent.loop import AgentLoop, AgentSource, Turn, run_to_message
from app.agent.ops import ClientToolCall, Finish, Op, Text
from app.agent.policy import LoopLimits, limit_message
from app.agent.splice import anchor
from app.anthropic.events import StreamBuilder
from app.config import Config
from app.errors import ConnectionBrokenError, LynkrError, RateLimitError, UpstreamError
from app.providers.base import UpstreamStream
from app.providers.formats.anthropic import StreamTranslator
from app.providers.wire import READING, SILENT
from app.tools.base import Tool, ToolContext
from app.tools.paths import Workspace
from tests.fakes.anthropic_events import message_end, message_start, text_delta, text_start

SESSION = "sess_loop"
USER = {"role": "user", "content": "What does a.py say?"}
READ_CALL = {"type": "tool_use", "id": "toolu_read", "name": "workspace_read", "input": {"path": "a.py"}}
PROGRESS = "\n⚙ workspace_read(path=a.py)\n"


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def answer(content: list[dict[str, Any]], stop_reason: str = "end_turn", tokens: tuple[int, int] = (10, 2),
           ) -> dict[str, Any]:
    return {"id": "msg_up", "type": "message", "role": "assistant", "model": "databricks-claude-sonnet-4-5",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]}}


class StubStream:
    """An open upstream stream of Anthropic events (``block`` holds it after them until closed)."""

    provider = "databricks"
    model = "databricks-claude-sonnet-4-5"
    headers = {"request-id": "up_1"}

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.translator_class: type[StreamTranslator] = StreamTranslator
        self.closed = threading.Event()
        self.released = 0
        self.paces: list[float] = []

    @property
    def items(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def pace(self, tick_s: float) -> None:
        self.paces.append(tick_s)

    @property
    def translator(self) -> Callable[[StreamBuilder], StreamTranslator]:
        return self.translator_class

    def close(self) -> None:
        self.closed.set()

    def release(self) -> None:
        self.released += 1


def upstream(stream: StubStream) -> UpstreamStream:
    """The stub as the open upstream stream it stands in for."""
    return cast(UpstreamStream, stream)


class StubSteps:
    """Model steps answered from a script: a message, a stream, or an error to raise."""

    def __init__(self, *replies: dict[str, Any] | StubStream | LynkrError) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def _next(self, request: dict[str, Any]) -> Any:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, LynkrError):
            raise reply
        return reply

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self._next(request)
        return reply

    def open(self, request: dict[str, Any]) -> Any:
        return self._next(request)


class StubBudget:
    """Records what each step spent and each later step asked for; refuses with ``refusal``."""

    def __init__(self, refusal: str | None = None) -> None:
        self.refusal = refusal
        self.spent_usage: list[dict[str, int]] = []
        self.admitted: list[dict[str, Any]] = []

    def spent(self, usage: dict[str, int]) -> None:
        self.spent_usage.append(usage)

    def admit(self, request: dict[str, Any]) -> str | None:
        self.admitted.append(request)
        return self.refusal


@pytest.fixture
def runs() -> list[dict[str, Any]]:
    return []


@pytest.fixture(autouse=True)
def traces(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    saved: list[tuple[Any, ...]] = []
    monkeypatch.setattr(loop_module.splice, "save_trace", lambda *args: saved.append(args))
    return saved


@pytest.fixture
def turn(tmp_path: Path, runs: list[dict[str, Any]]) -> Turn:
    def read(ctx: ToolContext, args: dict[str, Any]) -> str:
        runs.append(args)
        return "print('hi')"

    tool = Tool("workspace_read", "Read a file in the workspace.",
                {"type": "object", "properties": {"path": {"type": "string"}}}, read)
    config = Config()
    ctx = ToolContext(config, Workspace(tmp_path), session_id=None, request_id="req_loop")
    request = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [USER], "tools": [tool.definition()]}
    return Turn(request, {"workspace_read": tool}, ctx)


def make_loop(turn: Turn, steps: StubSteps, budget: StubBudget | None = None, *, max_steps: int = 5,
              max_tool_calls: int = 5, streaming: bool = False) -> AgentLoop:
    limits = LoopLimits(max_steps, max_tool_calls, 60.0, clock=lambda: 0.0)
    return AgentLoop(turn, steps, limits, budget or StubBudget(), Config(), SESSION, streaming=streaming)


def test_a_plain_answer_is_its_text_then_finish(turn: Turn, traces: list[tuple[Any, ...]]) -> None:
    steps = StubSteps(answer([{"type": "text", "text": "Hello."}], tokens=(10, 2)))
    budget = StubBudget()
    loop = make_loop(turn, steps, budget)

    assert list(loop.ops()) == [Text("Hello."), Finish("end_turn", usage(10, 2))]
    assert steps.requests == [turn.request]
    assert budget.spent_usage == [usage(10, 2)]
    assert loop.ran_server_tools is False
    assert traces == []


def test_a_server_tool_call_shows_progress_runs_the_tool_and_takes_a_second_step(
        turn: Turn, runs: list[dict[str, Any]], traces: list[tuple[Any, ...]]) -> None:
    first = answer([{"type": "text", "text": "Let me read it."}, READ_CALL], "tool_use", tokens=(10, 4))
    steps = StubSteps(first, answer([{"type": "text", "text": "It prints hi."}], tokens=(30, 3)))
    budget = StubBudget()
    loop = make_loop(turn, steps, budget)

    ops = list(loop.ops())

    assert ops == [Text("Let me read it."), Text(PROGRESS), Text("It prints hi."), Finish("end_turn", usage(40, 7))]
    assert runs == [{"path": "a.py"}]
    history = {"role": "assistant", "content": first["content"]}
    result = {"type": "tool_result", "tool_use_id": "toolu_read", "content": "print('hi')"}
    assert steps.requests[1]["messages"] == [USER, history, {"role": "user", "content": [result]}]
    assert budget.admitted == [steps.requests[1]]
    assert budget.spent_usage == [usage(10, 4), usage(30, 3)]
    assert loop.ran_server_tools is True
    [(session_id, shown, produced, results)] = traces
    assert session_id == SESSION
    assert shown == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me read it." + PROGRESS + "It prints hi."}]}
    assert produced == [history, {"role": "user", "content": [result]},
                        {"role": "assistant", "content": [{"type": "text", "text": "It prints hi."}]}]
    assert results == []


@pytest.mark.parametrize(("stored", "forgotten"), [(True, True), (False, False)])
def test_an_answer_without_server_steps_drops_a_trace_stored_under_its_anchor(
        turn: Turn, traces: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch, stored: bool,
        forgotten: bool) -> None:
    dropped: list[tuple[Any, ...]] = []
    monkeypatch.setattr(loop_module.splice, "forget_trace", lambda *args: dropped.append(args))
    shown = {"role": "assistant", "content": [{"type": "text", "text": "Done."}]}
    turn.stored_anchors = frozenset({anchor(shown)} if stored else {"another anchor"})
    loop = make_loop(turn, StubSteps(answer([{"type": "text", "text": "Done."}])))

    list(loop.ops())

    assert traces == []
    assert dropped == ([(SESSION, shown)] if forgotten else [])


def test_a_failed_step_after_a_tool_ran_raises_and_keeps_the_trace(
        turn: Turn, runs: list[dict[str, Any]], traces: list[tuple[Any, ...]]) -> None:
    refused = RateLimitError("Slow down.", provider="databricks")
    first = answer([READ_CALL], "tool_use")
    loop = make_loop(turn, StubSteps(first, refused))
    seen: list[Op] = []

    with pytest.raises(RateLimitError) as caught:
        seen.extend(loop.ops())

    assert caught.value is refused
    assert seen == [Text(PROGRESS)]
    assert not any(isinstance(op, Finish) for op in seen)
    assert runs == [{"path": "a.py"}]
    result = {"type": "tool_result", "tool_use_id": "toolu_read", "content": "print('hi')"}
    [(session_id, _, produced, results)] = traces
    assert session_id == SESSION
    assert produced == [{"role": "assistant", "content": [READ_CALL]}, {"role": "user", "content": [result]}]
    assert results == []


def test_a_failed_first_step_raises_and_saves_nothing(turn: Turn, traces: list[tuple[Any, ...]]) -> None:
    refused = RateLimitError("Slow down.")

    with pytest.raises(RateLimitError):
        list(make_loop(turn, StubSteps(refused)).ops())

    assert traces == []


def test_the_step_limit_ends_the_turn_with_its_message(turn: Turn, runs: list[dict[str, Any]],
                                                        traces: list[tuple[Any, ...]]) -> None:
    loop = make_loop(turn, StubSteps(answer([READ_CALL], "tool_use", tokens=(10, 4))), max_steps=1)
    note = limit_message("the limit of 1 model calls per request (POLICY_MAX_STEPS)")

    assert list(loop.ops()) == [Text(PROGRESS), Text(note), Finish("end_turn", usage(10, 4))]
    assert runs == [{"path": "a.py"}]
    result = {"type": "tool_result", "tool_use_id": "toolu_read", "content": "print('hi')"}
    [(_, shown, produced, _)] = traces
    assert shown == {"role": "assistant", "content": [{"type": "text", "text": PROGRESS + note}]}
    assert produced == [{"role": "assistant", "content": [READ_CALL]}, {"role": "user", "content": [result]},
                        {"role": "assistant", "content": [{"type": "text", "text": note.strip()}]}]


def test_the_tool_limit_ends_the_turn_before_the_tool_runs(turn: Turn, runs: list[dict[str, Any]],
                                                             traces: list[tuple[Any, ...]]) -> None:
    loop = make_loop(turn, StubSteps(answer([READ_CALL], "tool_use", tokens=(10, 4))), max_tool_calls=0)
    note = limit_message("the limit of 0 tool runs per request (POLICY_MAX_TOOL_CALLS)")

    assert list(loop.ops()) == [Text(note), Finish("end_turn", usage(10, 4))]
    assert runs == []
    assert traces == []


def test_a_budget_refusal_ends_the_turn_with_its_reason(turn: Turn) -> None:
    budget = StubBudget(refusal="a budget or rate limit (spent)")
    loop = make_loop(turn, StubSteps(answer([READ_CALL], "tool_use", tokens=(10, 4))), budget)

    assert list(loop.ops()) == [Text(PROGRESS), Text(limit_message("a budget or rate limit (spent)")),
                                Finish("end_turn", usage(10, 4))]


def test_a_client_tool_call_goes_to_the_client(turn: Turn, runs: list[dict[str, Any]]) -> None:
    bash = {"type": "tool_use", "id": "toolu_bash", "name": "Bash", "input": {"command": "ls"}}
    loop = make_loop(turn, StubSteps(answer([bash], "tool_use", tokens=(10, 4))))

    assert list(loop.ops()) == [ClientToolCall(bash), Finish("tool_use", usage(10, 4))]
    assert runs == []


def test_a_streamed_step_yields_its_deltas_and_releases_the_stream(turn: Turn) -> None:
    stream = StubStream([message_start(input_tokens=12), text_start(), text_delta("Hel"), text_delta("lo"),
                         {"type": "content_block_stop", "index": 0}, *message_end(output_tokens=6)])
    loop = make_loop(turn, StubSteps(stream), streaming=True)

    ops = list(loop.ops())

    assert ops == [READING, Text("Hel"), Text("lo"), Finish("end_turn", usage(12, 6))]  # opened on a helper
    assert stream.released == 1
    assert loop.current is None


class SilentAtEOF(StreamTranslator):
    """A translator that leaves an unfinished stream to its caller at EOF."""

    def close(self) -> list[dict[str, Any]]:
        return []


def test_a_streamed_step_cut_short_is_connection_broken(turn: Turn) -> None:
    stream = StubStream([message_start(), text_start(), text_delta("Hel")])
    stream.translator_class = SilentAtEOF
    loop = make_loop(turn, StubSteps(stream), streaming=True)

    with pytest.raises(ConnectionBrokenError) as caught:
        list(loop.ops())

    assert caught.value.provider == "databricks"
    assert caught.value.message == "The upstream stream ended before the model's answer was complete."
    assert stream.released == 1


def test_a_streamed_step_whose_translator_reports_the_cut_raises_that_error(turn: Turn) -> None:
    stream = StubStream([message_start(), text_start(), text_delta("Hel")])
    loop = make_loop(turn, StubSteps(stream), streaming=True)

    with pytest.raises(UpstreamError) as caught:
        list(loop.ops())

    assert (caught.value.status, caught.value.error_type) == (502, "api_error")
    assert stream.released == 1


def test_run_to_message_builds_the_clients_message(turn: Turn) -> None:
    loop = make_loop(turn, StubSteps(answer([{"type": "text", "text": "Hello."}])))

    message = run_to_message(loop, StreamBuilder(message_id="msg_lynkr", model="claude-sonnet-4-5"))

    assert message["content"] == [{"type": "text", "text": "Hello."}]
    assert message["stop_reason"] == "end_turn"
    assert message["model"] == "claude-sonnet-4-5"


def test_agent_source_close_cancels_the_tool_and_closes_the_current_stream(turn: Turn) -> None:
    first = StubStream([message_start(), text_start(), text_delta("Hel"), text_delta("lo")])
    source = AgentSource(make_loop(turn, StubSteps(), streaming=True), upstream(first))
    ops = source.items

    assert next(ops) == Text("Hel")
    assert source.loop.current is upstream(first)
    source.close()

    assert turn.tool_ctx is not None
    assert turn.tool_ctx.cancelled.is_set()
    assert first.closed.is_set()
    assert (source.provider, source.model, source.headers) == ("databricks", "databricks-claude-sonnet-4-5",
                                                               {"request-id": "up_1"})


def test_agent_source_close_without_a_stream_or_tools_is_harmless(turn: Turn) -> None:
    bare = Turn(turn.request, {}, None)
    source = AgentSource(make_loop(bare, StubSteps(), streaming=True), upstream(StubStream([])))

    source.close()

    assert source.loop.current is None


TOOL_ANSWER = [message_start(),
               {"type": "content_block_start", "index": 0, "content_block": {**READ_CALL, "input": {}}},
               {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"path": "a.py"}'}},
               {"type": "content_block_stop", "index": 0}, *message_end(stop_reason="tool_use")]
DONE_ANSWER = [message_start(), text_start(), text_delta("Done."), {"type": "content_block_stop", "index": 0},
               *message_end()]


def slow_tool_turn(turn: Turn, release: threading.Event, started: threading.Event) -> Turn:
    def read(ctx: ToolContext, args: dict[str, Any]) -> str:
        started.set()
        release.wait(5)
        return "print('hi')"

    tool = Tool("workspace_read", "Read a file in the workspace.",
                {"type": "object", "properties": {"path": {"type": "string"}}}, read)
    return Turn(turn.request, {"workspace_read": tool}, turn.tool_ctx)


def test_upstream_pauses_pass_through_a_streamed_step(turn: Turn) -> None:
    stream = StubStream([message_start(), READING, text_start(), text_delta("Hi"), SILENT,
                         {"type": "content_block_stop", "index": 0}, *message_end()])  # type: ignore[list-item]
    loop = make_loop(turn, StubSteps(), streaming=True)
    loop.pace(0.25)

    assert list(loop.ops(upstream(stream))) == [READING, Text("Hi"), SILENT, Finish("end_turn", usage(12, 6))]
    assert stream.paces == [0.25]


def test_a_streamed_turn_runs_its_tool_on_a_helper_and_is_silent_meanwhile(turn: Turn) -> None:
    release, started = threading.Event(), threading.Event()
    first, second = StubStream(TOOL_ANSWER), StubStream(DONE_ANSWER)
    loop = make_loop(slow_tool_turn(turn, release, started), StubSteps(second), streaming=True)
    loop.pace(0.01)
    ops = loop.ops(upstream(first))

    assert next(ops) == Text(PROGRESS)
    assert next(ops) is READING
    assert next(ops) is SILENT
    assert started.is_set()
    release.set()
    rest = list(ops)

    assert set(rest[:-2]) <= {SILENT, READING}  # the tool's end, then opening the second step
    assert rest[-2:] == [Text("Done."), Finish("end_turn", usage(24, 12))]  # both steps' usage
    assert (first.released, second.released) == (1, 1)
    assert second.paces == [0.01]


def test_a_client_gone_during_a_tool_tells_the_tool_to_stop(turn: Turn) -> None:
    release, started = threading.Event(), threading.Event()
    loop = make_loop(slow_tool_turn(turn, release, started), StubSteps(), streaming=True)
    loop.pace(0.01)
    ops = loop.ops(upstream(StubStream(TOOL_ANSWER)))
    while next(ops) is not SILENT:
        pass

    ops.close()
    release.set()

    assert turn.tool_ctx is not None
    assert turn.tool_ctx.cancelled.is_set()


def test_a_step_that_opens_after_its_turn_was_abandoned_is_released(turn: Turn) -> None:
    release, started = threading.Event(), threading.Event()
    late = StubStream(DONE_ANSWER)

    class SlowSteps(StubSteps):
        def open(self, request: dict[str, Any]) -> Any:
            started.set()
            release.wait(5)
            return late

    bare = Turn(turn.request, {"workspace_read": turn.offered["workspace_read"]}, turn.tool_ctx)
    loop = make_loop(bare, SlowSteps(), streaming=True)
    loop.pace(0.01)
    ops = loop.ops(upstream(StubStream(TOOL_ANSWER)))
    while not (next(ops) is SILENT and started.is_set()):
        pass
    ops.close()
    release.set()

    assert late.closed.wait(5)
    assert late.released == 1


def test_agent_source_release_before_the_loop_ran_releases_the_first_step(turn: Turn) -> None:
    first = StubStream(DONE_ANSWER)
    source = AgentSource(make_loop(turn, StubSteps(), streaming=True), upstream(first))

    source.release()

    assert (first.closed.is_set(), first.released) == (True, 1)


def test_agent_source_pace_reaches_the_step_in_progress(turn: Turn) -> None:
    first = StubStream([message_start(), text_start(), text_delta("Hel"), text_delta("lo")])
    source = AgentSource(make_loop(turn, StubSteps(), streaming=True), upstream(first))
    assert next(source.items) == Text("Hel")

    source.pace(0.5)

    assert first.paces[-1] == 0.5


def test_agent_source_release_after_its_ops_were_closed_unstarted_releases_the_first_step(turn: Turn) -> None:
    # The body closed before the loop ran: closing its generator leaves it closed, not unstarted.
    first = StubStream(DONE_ANSWER)
    source = AgentSource(make_loop(turn, StubSteps(), streaming=True), upstream(first))
    source.items.close()

    source.release()

    assert (first.closed.is_set(), first.released) == (True, 1)


def test_the_translator_relays_a_delta_that_lands_in_the_clients_open_block() -> None:
    from app.agent.loop import AgentTranslator
    from app.agent.ops import Thinking
    from app.anthropic.sse import FramedEvent

    translator = AgentTranslator(StreamBuilder(message_id="msg_1", model="m"))

    def framed(index: int, text: str) -> FramedEvent:
        data = text_delta(text, index)
        return FramedEvent(data, b"event: content_block_delta\ndata: <upstream's bytes>\n\n")

    first = Text("Hel", framed(0, "Hel"))
    assert translator.frame(first) is None, "the first delta opens the block: it is fed"
    assert [e["type"] for e in translator.feed(first)] == ["message_start", "content_block_start",
                                                           "content_block_delta"]
    assert translator.frame(Text("lo", framed(0, "lo"))) == b"event: content_block_delta\ndata: <upstream's bytes>\n\n"
    assert translator.frame(Text("!", framed(3, "!"))) is None, "another index is fed, renumbered"
    assert translator.frame(Text("plain")) is None, "a delta without bytes of its own is fed"
    thinking = FramedEvent({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "thinking_delta", "thinking": "hmm"}},
                           b"event: content_block_delta\ndata: <upstream's bytes>\n\n")
    assert translator.frame(Thinking("hmm", thinking)) is None, "the open block is text"
    misnamed = FramedEvent(text_delta("x", 0), b"event: error\ndata: <upstream's bytes>\n\n")
    assert translator.frame(Text("x", misnamed)) is None, "a frame named otherwise is fed, as a delta"
    extra = FramedEvent({**text_delta("x", 0), "error": {"message": "Bearer sk-secret"}},
                        b"event: content_block_delta\ndata: <upstream's bytes>\n\n")
    assert translator.frame(Text("x", extra)) is None, "an upstream's extra field never rides along"
    assert [e["type"] for e in translator.feed(Text("x", extra))] == ["content_block_delta"]
    assert translator.builder.accumulator.message["content"] == [{"type": "text", "text": "Hellox"}]
