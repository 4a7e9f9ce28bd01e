"""The server-side tool loop: call the model, run its server tool calls, feed the results back.

The loop is a generator of *ops* — what the client should see next: ``("text", str)``,
``("thinking", str)``, ``("signature", str)``, ``("tool", block)`` for a client tool call,
``("block", block)`` for a visible server block (web search), ``("finish", stop_reason, usage)``.
The same ops drive a :class:`~app.anthropic.events.StreamBuilder` for a JSON answer and, through
:class:`AgentTranslator`, a live SSE stream, so both show the same message. Server tool calls
never reach the client as ``tool_use`` blocks (Claude Code would try to run them): each shows
as a short line of progress text. When the model answers, asks for a client tool, or a limit
is reached, the turn ends; the steps behind it are stored for :mod:`app.agent.splice`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.accounting.usage import USAGE_KEYS, RequestRecord, usage_counts
from app.agent import runner, splice, websearch
from app.agent.policy import LoopLimits, limit_message
from app.anthropic.events import Event, StreamBuilder
from app.errors import BillingError, LynkrError, RateLimitError
from app.logging import get_logger
from app.orchestrator import Orchestrator
from app.providers.base import CallContext, UpstreamStream
from app.routing import Route
from app.tools.base import Tool, ToolContext

log = get_logger("agent")
Op = tuple[Any, ...]
Ops = Generator[Op, None, None]
PROGRESS_ARG_CHARS = 80


@dataclass
class Turn:
    """One client request in the agent path: the upstream request and what runs on the server."""

    request: dict[str, Any]
    offered: dict[str, Tool]
    tool_ctx: ToolContext | None
    web_search: dict[str, Any] | None = None  # the client's web-search server tool, run by the gateway


@dataclass
class _Shown:
    """What the client has been shown, for the trace's anchor."""

    text: list[str] = field(default_factory=list)
    tool_ids: list[str] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": "".join(self.text)}]
        return {"role": "assistant", "content": blocks + [{"type": "tool_use", "id": i} for i in self.tool_ids]}


class StepFailed(Exception):
    """A model call after the first byte failed; the turn ends with the error shown."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class AgentLoop:
    """Runs turns for one request: ``ops`` yields what to show, step by step."""

    def __init__(self, orchestrator: Orchestrator, turn: Turn, ctx: CallContext, record: RequestRecord,
                 routes: list[Route], *, streaming: bool) -> None:
        self.orchestrator = orchestrator
        self.turn = turn
        self.ctx = ctx
        self.record = record
        self.routes = routes
        self.streaming = streaming
        self.limits = LoopLimits.from_config(orchestrator.config)
        self.totals = dict.fromkeys(USAGE_KEYS, 0)
        self.current: UpstreamStream | None = None
        self._shown = _Shown()

    # -- the loop ---------------------------------------------------------------------------------

    def ops(self, opened: UpstreamStream | None = None) -> Ops:
        """Everything the client sees for this turn, ending with a ``finish`` op."""
        request = self.turn.request
        produced: list[dict[str, Any]] = []
        self.limits.before_step()
        while True:
            try:
                message = yield from self._step(request, opened)
            except StepFailed as exc:
                yield from self._end(produced, f"\n\n[Lynkr: the model call failed ({exc}).]")
                return
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
            refused = self.limits.before_step() or self._admit_next(request)
            if refused:
                yield from self._end(produced, limit_message(refused))
                return

    def _end(self, produced: list[dict[str, Any]], note: str) -> Ops:
        yield from self._text(note)
        yield self._finish("end_turn")
        if produced:
            self._save([*produced, {"role": "assistant", "content": [{"type": "text", "text": note.strip()}]}], [])

    def _finish(self, stop_reason: str) -> Op:
        self.record.usage = dict(self.totals)
        return ("finish", stop_reason, dict(self.totals))

    def _text(self, text: str) -> Ops:
        self._shown.text.append(text)
        yield ("text", text)

    def _client_calls(self, calls: list[dict[str, Any]]) -> Ops:
        for call in calls:
            self._shown.tool_ids.append(str(call.get("id")))
            yield ("tool", call)

    def _split(self, message: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        calls = [b for b in message.get("content") or [] if b.get("type") == "tool_use"]
        server = [c for c in calls if c.get("name") in self.turn.offered
                  or (self.turn.web_search is not None and c.get("name") == websearch.NAME)]
        return server, [c for c in calls if c not in server]

    def _run_server_calls(self, calls: list[dict[str, Any]]) -> Generator[Op, None, list[dict[str, Any]]]:
        results = []
        config = self.orchestrator.config
        for call in calls:
            if self.turn.web_search is not None and call.get("name") == websearch.NAME:
                shown, result = websearch.run(config, call, self.turn.web_search)
                for block in shown:
                    yield ("block", block)
            else:
                yield from self._text(_progress(call))
                assert self.turn.tool_ctx is not None
                result = runner.run_call(call, self.turn.offered.get(str(call.get("name"))), self.turn.tool_ctx)
                if result.get("is_error"):
                    yield from self._text(" → error\n")
            results.append(result)
        return results

    # -- one model call ---------------------------------------------------------------------------

    def _step(self, request: dict[str, Any], opened: UpstreamStream | None) -> Generator[Op, None, dict[str, Any]]:
        if not self.streaming:
            try:
                message = self.orchestrator.complete(request, self.ctx, self.record, self.routes, cache=False).message
            except LynkrError as exc:
                if self.limits.steps <= 1:
                    raise
                raise StepFailed(exc.error_type, exc.message) from exc
            self._count(message)
            for op in _content_ops(message):
                if op[0] == "text":
                    self._shown.text.append(op[1])
                yield op
            return message
        message = yield from self._streamed_step(request, opened)
        self._count(message)
        return message

    def _streamed_step(self, request: dict[str, Any],
                       opened: UpstreamStream | None) -> Generator[Op, None, dict[str, Any]]:
        try:
            stream = opened or self.orchestrator.opener(request, self.ctx, self.record, self.routes)()
        except LynkrError as exc:
            raise StepFailed(exc.error_type, exc.message) from exc
        self.current = stream
        builder = StreamBuilder(message_id="step", model=stream.model)
        translator = stream.translator(builder)
        try:
            for item in stream.items:
                yield from self._live(translator.feed(item))
            yield from self._live(translator.close())
        except (OSError, ValueError) as exc:
            raise StepFailed("api_error", f"the upstream stream broke: {type(exc).__name__}") from exc
        finally:
            stream.release()
            self.current = None
        if not builder.grammar.stopped:
            raise StepFailed("api_error", "the upstream stream ended early")
        return builder.accumulator.message

    def _live(self, events: list[Event]) -> Ops:
        for event in events:
            kind = event.get("type")
            if kind == "error":
                error = event.get("error") or {}
                raise StepFailed(str(error.get("type")), str(error.get("message")))
            delta = event.get("delta") or {}
            if kind != "content_block_delta":
                continue
            if delta.get("type") == "text_delta":
                yield from self._text(delta.get("text", ""))
            elif delta.get("type") == "thinking_delta":
                yield ("thinking", delta.get("thinking", ""))
            elif delta.get("type") == "signature_delta":
                yield ("signature", delta.get("signature", ""))

    # -- accounting -------------------------------------------------------------------------------

    def _count(self, message: dict[str, Any]) -> None:
        usage = usage_counts(message.get("usage"))
        for key in USAGE_KEYS:
            self.totals[key] += usage[key]
        budgets = self.orchestrator.budgets
        if budgets is not None and self.record.admission is not None:
            budgets.settle(self.record.admission, self.record.model, usage)
            self.record.admission = None

    def _admit_next(self, request: dict[str, Any]) -> str | None:
        try:
            self.orchestrator.admit(request, self.record, self.routes)
        except (BillingError, RateLimitError) as exc:
            return f"a budget or rate limit ({exc.message})"
        return None

    def _save(self, produced: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        ran_server_tools = len(produced) > 1 or bool(results)
        if self.record.session_id and ran_server_tools:
            splice.save_trace(self.record.session_id, self._shown.message(), produced, results)


def _content_ops(message: dict[str, Any]) -> Iterator[Op]:
    for block in message.get("content") or []:
        if block.get("type") == "text" and block.get("text"):
            yield ("text", block["text"])
        elif block.get("type") == "thinking":
            yield ("thinking", block.get("thinking", ""))
            if block.get("signature"):
                yield ("signature", block["signature"])


def _history(message: dict[str, Any]) -> dict[str, Any]:
    """The model's message as it goes back into the conversation (no empty text blocks)."""
    content = [b for b in message.get("content") or [] if not (b.get("type") == "text" and not b.get("text"))]
    return {"role": "assistant", "content": content}


def _progress(call: dict[str, Any]) -> str:
    args = call.get("input") if isinstance(call.get("input"), dict) else {}
    shown = ", ".join(f"{k}={str(v)[:PROGRESS_ARG_CHARS]}" for k, v in list(args.items())[:3])
    return f"\n⚙ {call.get('name')}({shown})\n"


class AgentTranslator:
    """Applies ops to a :class:`StreamBuilder`: the loop's stream as Anthropic events."""

    def __init__(self, builder: StreamBuilder) -> None:
        self.builder = builder

    def feed(self, op: Op) -> list[Event]:
        """The events for one op."""
        return apply(self.builder, op)

    def close(self) -> list[Event]:
        """The loop ended; a turn that never finished is an error."""
        if self.builder.finished:
            return []
        return self.builder.error("api_error", "The tool loop ended without an answer.")


def apply(builder: StreamBuilder, op: Op) -> list[Event]:
    """Feed one op to ``builder``; the events it emits."""
    kind = op[0]
    if kind == "text":
        return builder.text(op[1])
    if kind == "thinking":
        return builder.thinking(op[1])
    if kind == "signature":
        return builder.thinking_signature(op[1])
    if kind == "tool":
        call = op[1]
        return (builder.tool_start(call["id"], call["id"], call["name"])
                + builder.tool_args(call["id"], _json(call.get("input") or {})))
    if kind == "block":
        return builder.block(op[1])
    _, stop_reason, usage = op
    return builder.finish(stop_reason, usage)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def run_to_message(loop: AgentLoop, builder: StreamBuilder) -> dict[str, Any]:
    """Drive ``loop`` to its end into ``builder``; the message the client gets."""
    for op in loop.ops():
        apply(builder, op)
    return builder.accumulator.message

