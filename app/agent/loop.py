"""The server-side tool loop: call the model, run its server tool calls, feed the results back.

The loop is a generator of :mod:`app.agent.ops` — what the client should see next. The same ops
drive a :class:`~app.anthropic.events.StreamBuilder` for a JSON answer and a live SSE stream, so
both show the same message. Server tool calls never reach the client as ``tool_use`` blocks
(Claude Code would try to run them): each shows as a short line of progress text. When the model
answers, asks for a client tool, or a limit is reached, the turn ends; the steps behind it are
stored for :mod:`app.agent.splice`. An upstream failure at any step ends the turn as that
:class:`~app.errors.LynkrError` — an HTTP error before the first byte, an ``error`` event after
it — never as an answer; what the server tools did before it stays in the session's trace.

The loop gets everything it may use explicitly: its model calls (:class:`Steps`), its limits
and its budget (:class:`StepBudget`).

A streamed turn runs on the response thread: the upstream step is read there, and what may
block for long — a tool, opening the next step — runs on a helper thread while the loop hands
out :data:`~app.providers.wire.SILENT` per tick, so the client still hears pings.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from app.accounting.usage import USAGE_KEYS, usage_counts
from app.agent import runner, splice, websearch
from app.agent.ops import ClientToolCall, Finish, Op, ServerBlock, Signature, StepBuilder, Text, Thinking, apply
from app.agent.policy import LoopLimits, limit_message
from app.anthropic.encoded import Encoded
from app.anthropic.events import Event, StreamBuilder
from app.anthropic.sse import FramedEvent
from app.config import Config
from app.errors import ConnectionBrokenError, LynkrError, UpstreamError
from app.logging import get_logger
from app.providers.base import UpstreamStream
from app.providers.wire import DEFAULT_TICK_S, READING, SILENT, Pause
from app.sources import on_helper
from app.tools.base import Tool, ToolContext

log = get_logger("agent")
Ops = Generator[Op | Pause, None, None]
T = TypeVar("T")
PROGRESS_ARG_CHARS = 80


@dataclass
class Turn:
    """One client request in the agent path: the upstream request and what runs on the server."""

    request: dict[str, Any]
    offered: dict[str, Tool]
    tool_ctx: ToolContext | None
    web_search: dict[str, Any] | None = None  # the client's web-search server tool, run by the gateway
    encoded: Encoded | None = None  # the request's messages serialised (the client's and stored steps' bytes)
    stored_anchors: frozenset[str] = frozenset()  # anchors of the request's messages with a stored trace
    trace_key: str | None = None  # the key its steps are stored under (app.agent.splice.trace_session)


class Steps(Protocol):
    """The loop's model calls (retries, fallback and attempt records are the caller's)."""

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """A whole answer to ``request``."""

    def open(self, request: dict[str, Any]) -> UpstreamStream:
        """An open stream answering ``request``."""


class StepBudget(Protocol):
    """The request's budget across steps."""

    def spent(self, usage: dict[str, int]) -> None:
        """A step used ``usage``: settle what was held for it."""

    def admit(self, request: dict[str, Any]) -> str | None:
        """Hold the next step's estimate; why it may not run, or None."""


@dataclass
class _Shown:
    """What the client has been shown, for the trace's anchor."""

    text: list[str] = field(default_factory=list)
    tool_ids: list[str] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": "".join(self.text)}]
        return {"role": "assistant", "content": blocks + [{"type": "tool_use", "id": i} for i in self.tool_ids]}


class AgentLoop:
    """Runs the turn of one request: :meth:`ops` yields what to show, step by step.

    ``session_id`` is the key its steps are stored under (:func:`app.agent.splice.trace_session`).
    """

    def __init__(self, turn: Turn, steps: Steps, limits: LoopLimits, budget: StepBudget, config: Config,
                 session_id: str | None, *, streaming: bool) -> None:
        self.turn = turn
        self.steps = steps
        self.limits = limits
        self.budget = budget
        self.config = config
        self.session_id = session_id
        self.streaming = streaming
        self.totals = dict.fromkeys(USAGE_KEYS, 0)
        self.ran_server_tools = False
        self.current: UpstreamStream | None = None
        self.tick_s = DEFAULT_TICK_S
        self._shown = _Shown()

    def pace(self, tick_s: float) -> None:
        """Hand out :data:`SILENT` after each ``tick_s`` seconds of waiting (a streamed turn)."""
        self.tick_s = tick_s
        if self.current is not None:
            self.current.pace(tick_s)

    # -- the loop ---------------------------------------------------------------------------------

    def ops(self, opened: UpstreamStream | None = None) -> Ops:
        """Everything the client sees for this turn, ending with a :class:`Finish`."""
        request = self.turn.request
        produced: list[dict[str, Any]] = []
        self.limits.before_step()
        while True:
            try:
                message = yield from self._step(request, opened)
            except LynkrError:
                if produced:
                    self._save(produced, [])
                raise
            opened = None
            server, client = self._split(message)
            history = _history(message)
            if not server:
                yield from self._client_calls(client)
                yield self._finish(message.get("stop_reason") or "end_turn")
                self._save([*produced, history], [])
                return
            refused = self.limits.before_tools(len(server))
            if refused:
                yield from self._end(produced, limit_message(refused))
                return
            self.ran_server_tools = True
            results = yield from self._run_server_calls(server)
            if client:
                yield from self._client_calls(client)
                yield self._finish("tool_use")
                self._save([*produced, history], results)
                return
            produced += [history, {"role": "user", "content": results}]
            request = {**request, "messages": [*request["messages"], history, {"role": "user", "content": results}]}
            if (request.get("tool_choice") or {}).get("type") in ("any", "tool"):
                # The forced call has run; forcing it again would loop until a limit stops it.
                request["tool_choice"] = {**request["tool_choice"], "type": "auto"}
                request["tool_choice"].pop("name", None)
            refused = self.limits.before_step() or self.budget.admit(request)
            if refused:
                yield from self._end(produced, limit_message(refused))
                return

    def _end(self, produced: list[dict[str, Any]], note: str) -> Ops:
        """A limit stopped the loop: the turn ends as an answer that says which."""
        yield from self._text(note)
        yield self._finish("end_turn")
        if produced:
            self._save([*produced, {"role": "assistant", "content": [{"type": "text", "text": note.strip()}]}], [])

    def _finish(self, stop_reason: str) -> Finish:
        return Finish(stop_reason, dict(self.totals))

    def _text(self, text: str) -> Ops:
        self._shown.text.append(text)
        yield Text(text)

    def _client_calls(self, calls: list[dict[str, Any]]) -> Ops:
        for call in calls:
            self._shown.tool_ids.append(str(call.get("id")))
            yield ClientToolCall(call)

    def _split(self, message: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        calls = [b for b in message.get("content") or [] if b.get("type") == "tool_use"]
        server = [c for c in calls if c.get("name") in self.turn.offered
                  or (self.turn.web_search is not None and c.get("name") == websearch.NAME)]
        return server, [c for c in calls if c not in server]

    def _run_server_calls(self, calls: list[dict[str, Any]]) -> Generator[Op | Pause, None, list[dict[str, Any]]]:
        results = []
        for call in calls:
            if self.turn.web_search is not None and call.get("name") == websearch.NAME:
                shown, result = yield from self._waited(
                    partial(websearch.run, self.config, call, self.turn.web_search))
                for block in shown:
                    yield ServerBlock(block)
            else:
                yield from self._text(_progress(call))
                assert self.turn.tool_ctx is not None
                result = yield from self._waited(
                    partial(runner.run_call, call, self.turn.offered.get(str(call.get("name"))), self.turn.tool_ctx))
                if result.get("is_error"):
                    yield from self._text(" → error\n")
            results.append(result)
        return results

    def _waited(self, call: Callable[[], T],
                abandoned: Callable[[Future[T]], None] | None = None) -> Generator[Pause, None, T]:
        """``call``'s result. A streamed turn runs it on a helper thread, handing out :data:`SILENT`
        per tick meanwhile; if the client goes away, a tool that waits is told to stop, and
        ``abandoned`` gets the call once it completes."""
        if not self.streaming:
            return call()
        yield READING
        running: Future[T] = on_helper(call)
        try:
            while True:
                try:
                    return running.result(timeout=self.tick_s)
                except FutureTimeout:
                    yield SILENT
        except GeneratorExit:
            if self.turn.tool_ctx is not None:
                self.turn.tool_ctx.cancelled.set()
            if abandoned is not None:
                running.add_done_callback(abandoned)
            raise

    # -- one model call ---------------------------------------------------------------------------

    def _step(self, request: dict[str, Any],
              opened: UpstreamStream | None) -> Generator[Op | Pause, None, dict[str, Any]]:
        if self.streaming:
            message = yield from self._streamed_step(request, opened)
        else:
            message = self.steps.complete(request)
            for op in _content_ops(message):
                if isinstance(op, Text):
                    self._shown.text.append(op.text)
                yield op
        self._count(message)
        return message

    def _streamed_step(self, request: dict[str, Any],
                       opened: UpstreamStream | None) -> Generator[Op | Pause, None, dict[str, Any]]:
        stream = opened or (yield from self._waited(partial(self.steps.open, request), _release_unread))
        self.current = stream
        try:
            stream.pace(self.tick_s)
            builder = StepBuilder(model=stream.model)
            translator = stream.translator(builder)
            for item in stream.items:
                if isinstance(item, Pause):
                    yield item
                    continue
                _fed(translator, item)
                yield from self._visible(builder)
            translator.close()
            yield from self._visible(builder)
        finally:
            stream.release()
            self.current = None
        if not builder.grammar.stopped:
            raise ConnectionBrokenError("The upstream stream ended before the model's answer was complete.",
                                        provider=stream.provider)
        return builder.accumulator.message

    def _visible(self, builder: StepBuilder) -> Ops:
        """The ops the step's last item produced; an upstream ``error`` event ends the turn."""
        for op in builder.take():
            if isinstance(op, Text):
                self._shown.text.append(op.text)
            yield op
        if builder.failure is not None:
            raise builder.failure

    # -- accounting -------------------------------------------------------------------------------

    def _count(self, message: dict[str, Any]) -> None:
        usage = usage_counts(message.get("usage"))
        for key in USAGE_KEYS:
            self.totals[key] += usage[key]
        self.budget.spent(usage)

    def _save(self, produced: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        if not self.session_id:
            return
        shown = self._shown.message()
        if self.ran_server_tools:
            splice.save_trace(self.session_id, shown, produced, results)
        elif self.turn.stored_anchors and splice.anchor(shown) in self.turn.stored_anchors:
            splice.forget_trace(self.session_id, shown)


def _release_unread(running: Future[UpstreamStream]) -> None:
    """A step that opened after its turn was abandoned: released unread."""
    if running.exception() is None:
        stream = running.result()
        stream.close()
        stream.release()


def _fed(translator: Any, item: Any) -> Any:
    """Feed one upstream item to a format translator; a malformed item is an upstream error."""
    try:
        return translator.feed(item)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UpstreamError(f"The upstream stream was malformed: {exc}") from exc


def _content_ops(message: dict[str, Any]) -> Iterator[Op]:
    for block in message.get("content") or []:
        if block.get("type") == "text" and block.get("text"):
            yield Text(block["text"])
        elif block.get("type") == "thinking":
            yield Thinking(block.get("thinking", ""))
            if block.get("signature"):
                yield Signature(block["signature"])


def _history(message: dict[str, Any]) -> dict[str, Any]:
    """The model's message as it goes back into the conversation (no empty text blocks)."""
    content = [b for b in message.get("content") or [] if not (b.get("type") == "text" and not b.get("text"))]
    return {"role": "assistant", "content": content}


def _progress(call: dict[str, Any]) -> str:
    given = call.get("input")
    args: dict[str, Any] = given if isinstance(given, dict) else {}
    shown = ", ".join(f"{k}={str(v)[:PROGRESS_ARG_CHARS]}" for k, v in list(args.items())[:3])
    return f"\n⚙ {call.get('name')}({shown})\n"


class AgentTranslator:
    """Applies ops to the client's :class:`StreamBuilder`: the loop's turn as Anthropic events."""

    def __init__(self, builder: StreamBuilder) -> None:
        self.builder = builder

    def feed(self, op: Op) -> list[Event]:
        """The events for one op."""
        return apply(self.builder, op)

    def frame(self, op: Op) -> bytes | None:
        """The upstream's own bytes for a text or reasoning delta that lands where the client's
        message would put it anyway (most of a first step), once the builder has taken it; None
        when the op must be fed."""
        relayed = op.relayed if isinstance(op, Text | Thinking) else None
        if relayed is None or not _as_fed(relayed) or not self.builder.passes_on_delta(relayed):
            return None
        return relayed.frame


def _as_fed(event: FramedEvent) -> bool:
    """Whether the event's bytes say what feeding it would: named ``content_block_delta``, with no
    field but the index and a delta of one kind (an upstream's extra fields, or a frame named
    otherwise, would reach the client only through the relay)."""
    delta = event.get("delta")
    return (event.frame.startswith(b"event: content_block_delta\n") and len(event) == 3
            and isinstance(delta, dict) and len(delta) == 2)

    def close(self) -> list[Event]:
        """The loop ended; a turn that never finished is an error."""
        if self.builder.finished:
            return []
        return self.builder.error("api_error", "The tool loop ended without an answer.")


@dataclass
class AgentSource:
    """The loop's turn as a stream source for :mod:`app.sources`; its first step is already open."""

    loop: AgentLoop
    first: UpstreamStream
    translator: Callable[[StreamBuilder], AgentTranslator] = AgentTranslator
    _ops: Ops | None = None

    @property
    def provider(self) -> str:
        """The provider that answered the first step."""
        return self.first.provider

    @property
    def model(self) -> str:
        """The model that answered the first step."""
        return self.first.model

    @property
    def headers(self) -> dict[str, str]:
        """The first step's upstream headers the client may see."""
        return self.first.headers

    @property
    def items(self) -> Ops:
        """The turn's ops and pauses."""
        if self._ops is None:
            self._ops = self.loop.ops(self.first)
        return self._ops

    def pace(self, tick_s: float) -> None:
        """Hand out :data:`SILENT` after each ``tick_s`` seconds of waiting."""
        self.loop.pace(tick_s)

    def close(self) -> None:
        """The client went away: abort the model call in progress, and tell a tool that waits (an
        MCP call) to stop waiting and cancel; other tools finish on their own."""
        tool_ctx = self.loop.turn.tool_ctx
        if tool_ctx is not None:
            tool_ctx.cancelled.set()
        current = self.loop.current
        if current is not None:
            current.close()

    def release(self) -> None:
        """Let the first step go; releasing is idempotent, so this only matters when the loop
        never read it (each step the loop runs releases itself)."""
        self.first.close()
        self.first.release()


def run_to_message(loop: AgentLoop, builder: StreamBuilder) -> dict[str, Any]:
    """Drive ``loop`` to its end into ``builder``; the message the client gets."""
    for op in loop.ops():
        if not isinstance(op, Pause):
            apply(builder, op)
    return builder.accumulator.message
