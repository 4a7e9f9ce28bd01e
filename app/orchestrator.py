"""One request end to end: :meth:`Orchestrator.handle` owns the exchange from routing to its record.

The candidates come from :class:`app.routing.Router` and are tried by
:class:`app.candidates.CandidateChain` (breakers, retries, fallback before the first byte); once a
stream has been opened nothing is retried or re-routed. In server mode the turn runs through the
agent loop; either way the prompt cache is consulted first, and an answer is stored when no
server tool ran for it.

Every exit — an answer, a stream's end, a refusal, a failure at any step — reaches
:meth:`Orchestrator.settle` once: the worker slot is given back, the breaker has heard the
outcome, and :class:`app.accounting.ledger.Ledger` settles the budget holds to the real usage and
queues the usage row (with every attempt) and the new transcript turns for the background writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.accounting.budgets import Budgets
from app.accounting.ledger import CLIENT_GONE, Ledger
from app.accounting.pricing import PriceTable
from app.accounting.usage import usage_counts
from app.agent.loop import AgentLoop, AgentSource, Turn, run_to_message
from app.agent.policy import LoopLimits
from app.agent.service import Agent
from app.anthropic.events import StreamBuilder
from app.cache.prompt import (
    MissStreamBuilder,
    PromptCache,
    hit_message,
    message_id_for,
    miss_usage,
    prompt_tokens_of,
    storable_answer,
)
from app.candidates import CandidateChain
from app.config import Config
from app.errors import (
    BillingError,
    LynkrError,
    RateLimitError,
    UpstreamError,
)
from app.exchange import Exchange
from app.logging import get_logger
from app.metrics.recorder import NULL_METRICS, MetricsRecorder
from app.providers.base import Provider, UpstreamStream
from app.resilience.retry import (
    BreakerRegistry,
    RetryPolicy,
    counts_as_failure,
)
from app.routing import Route, Router, RoutingRule
from app.sources import StreamSource, StreamStart, begin
from app.storage.recorder import Recorder
from app.tools.base import ModelCall, ToolError

log = get_logger("orchestrator")
TOOL_MODEL_MAX_TOKENS = 4096  # a review or release notes; the model's own limit clamps it further
StreamDone = Callable[[StreamBuilder, LynkrError | None], None]


@dataclass
class Answer:
    """A whole answer for the client, and the headers that go with it."""

    message: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamAnswer:
    """A stream that has begun: its source (or the open under way), the client's builder, and the
    callback its end reports to."""

    start: StreamStart
    builder: StreamBuilder
    on_done: StreamDone
    headers: dict[str, str] = field(default_factory=dict)


class Orchestrator:
    """Answers exchanges: routes them to providers, runs the agent loop, and records what happened."""

    def __init__(self, config: Config, providers: dict[str, Provider], recorder: Recorder,
                 breakers: BreakerRegistry, retry: RetryPolicy, rules: list[RoutingRule] | None = None,
                 sleep: Callable[[float], None] = time.sleep, cache: PromptCache | None = None,
                 metrics: MetricsRecorder = NULL_METRICS, prices: PriceTable | None = None,
                 budgets: Budgets | None = None, agent: Agent | None = None) -> None:
        self.config = config
        self.providers = providers
        self.breakers = breakers
        self.cache = cache if cache is not None else PromptCache(enabled=False)
        self.budgets = budgets
        self.metrics = metrics
        self.agent = agent
        self.router = Router(config, providers, breakers, rules or [], metrics.fallback)
        self.candidates = CandidateChain(self.router, breakers, retry, metrics, sleep)
        self.ledger = Ledger(config, providers, recorder, prices or PriceTable(), budgets, metrics)

    @property
    def recorder(self) -> Recorder:
        """The background writer the ledger queues rows for."""
        return self.ledger.recorder

    # -- the exchange -----------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Answer | StreamAnswer:
        """Answer ``ex``: a whole message, or a stream that has begun.

        A failure before the answer raises the :class:`LynkrError` for the client, with the
        exchange already settled.
        """
        try:
            routes = self.router.candidates(ex.body, ex.facts)
            self._admit(ex, ex.body, routes)
            turn = self.agent.prepare(ex.body, ex.record, ex.ctx.encoded) if self.agent is not None else None
            if turn is not None:
                ex.use_upstream(turn.request, turn.encoded)
                if turn.tool_ctx is not None:
                    turn.tool_ctx = replace(turn.tool_ctx, ask_model=self._model_call(ex, routes))
            hit = self._cached(ex, routes)
            if hit is not None:
                self.settle(ex, hit)
                return Answer(hit, {"X-Lynkr-Cache": "hit"})
            if ex.stream:
                return self._stream(ex, routes, turn)
            return self._complete(ex, routes, turn)
        except LynkrError as exc:
            self.settle(ex, failure=exc)
            raise
        except Exception:
            self.settle(ex, failure=LynkrError("Internal server error"))
            raise

    def settle(self, ex: Exchange, message: dict[str, Any] | None = None, *,
               failure: LynkrError | None = None, status: int | None = None) -> None:
        """End ``ex`` once: give its slot back, then record how it ended (later calls do nothing)."""
        if not ex.settle():
            return
        record = ex.record
        if failure is not None:
            record.status, record.error_type = failure.status, failure.error_type
            self._tell_breaker(failure, record.provider)
        else:
            record.status = status or 200
        self.ledger.enter(record, ex.body, message, ex.started, ex.ctx.encoded)

    def _complete(self, ex: Exchange, routes: list[Route], turn: Turn | None) -> Answer:
        if turn is not None:
            loop = self._loop(ex, routes, turn, streaming=False)
            try:
                message = run_to_message(loop, StreamBuilder(message_id=message_id_for(ex.record.request_id),
                                                             model=ex.ctx.requested_model))
            finally:
                self._loop_ended(ex, loop)
            if not loop.ran_server_tools:
                self._store(ex, message)
            self.settle(ex, message)
            return Answer(message)
        reply = self.candidates.run(ex, routes, lambda provider, ctx: provider.send(ex.upstream, ctx))
        if ex.facts.cacheable and storable_answer(reply.message):
            reply.message["usage"] = miss_usage(reply.message.get("usage") or {}, lambda: ex.facts.prompt_tokens)
            self._store(ex, reply.message)
        ex.record.model = reply.model
        ex.record.usage = usage_counts(reply.message.get("usage"))
        ex.record.attempts[-1].usage = ex.record.usage
        self.settle(ex, reply.message)
        return Answer(reply.message, reply.headers)

    def _stream(self, ex: Exchange, routes: list[Route], turn: Turn | None) -> StreamAnswer:
        message_id = message_id_for(ex.record.request_id)
        builder: StreamBuilder
        if ex.facts.cacheable:
            builder = MissStreamBuilder(prompt_tokens=lambda: ex.facts.prompt_tokens, message_id=message_id,
                                        model=ex.ctx.requested_model)
        else:
            builder = StreamBuilder(message_id=message_id, model=ex.ctx.requested_model)
        loop = self._loop(ex, routes, turn, streaming=True) if turn is not None else None

        def open_source() -> StreamSource:
            first = self.candidates.run(ex, routes, lambda provider, ctx: provider.open_stream(ex.upstream, ctx))
            ex.record.model = first.model
            return AgentSource(loop, first) if loop is not None else first

        try:
            start = begin(open_source, self.config.keepalive_commit_ms / 1000)
        except BaseException:
            if loop is not None:  # what the loop's steps used is recorded even when it failed first
                self._loop_ended(ex, loop)
            raise

        def done(finished: StreamBuilder, failure: LynkrError | None) -> None:
            self._stream_done(ex, finished, failure, loop)

        return StreamAnswer(start, builder, done, dict(start.stream.headers) if start.stream else {})

    def _tell_breaker(self, failure: LynkrError, provider: str | None) -> None:
        """An upstream failure the candidate chain did not see (a stream that broke after it opened)
        is the provider's failure too."""
        provider = failure.provider or provider
        if (provider and not failure.heard_by_breaker and isinstance(failure, UpstreamError)
                and counts_as_failure(failure.status)):
            self.breakers.get(provider).record_failure()
            failure.heard_by_breaker = True

    def _stream_done(self, ex: Exchange, builder: StreamBuilder, failure: LynkrError | None,
                     loop: AgentLoop | None) -> None:
        message = builder.accumulator.message or None
        if loop is not None:
            self._loop_ended(ex, loop)
        if failure is not None:
            self.settle(ex, message, failure=failure)
        elif not builder.grammar.stopped:
            self.settle(ex, message, status=CLIENT_GONE)
        else:
            if message is not None and (loop is None or not loop.ran_server_tools):
                self._store(ex, message)
            self.settle(ex, message)

    def _loop(self, ex: Exchange, routes: list[Route], turn: Turn, *, streaming: bool) -> AgentLoop:
        return AgentLoop(turn, _AgentSteps(self.candidates, ex, routes), LoopLimits.from_config(self.config),
                         _AgentBudget(self, ex, routes), self.config, turn.trace_key, streaming=streaming)

    def _model_call(self, ex: Exchange, routes: list[Route]) -> ModelCall:
        """How a tool asks the model (diff review, release notes): the same candidates, retries,
        attempt records and budgets as the request itself; a refusal or failure is the tool's error."""

        def ask(system: str, prompt: str) -> str:
            request = {"model": ex.body["model"], "max_tokens": TOOL_MODEL_MAX_TOKENS, "system": system,
                       "messages": [{"role": "user", "content": prompt}]}
            record = ex.record
            admission = None
            try:
                admission = (self.budgets.admit(record.api_key, record.session_id, record.model, request)
                             if self.budgets is not None else None)
                reply = self.candidates.run(ex, routes, lambda provider, ctx: provider.send(request, ctx))
            except LynkrError as exc:
                if self.budgets is not None and admission is not None:
                    self.budgets.settle(admission, record.model, {})  # the failed call spent nothing
                raise ToolError(f"the model call failed: {exc.client_message}") from exc
            usage = usage_counts(reply.message.get("usage"))
            record.attempts[-1].usage = usage
            if self.budgets is not None:
                self.budgets.settle(admission, reply.model, usage)
            return "".join(block.get("text", "") for block in reply.message.get("content") or []
                           if block.get("type") == "text")

        return ask

    def _loop_ended(self, ex: Exchange, loop: AgentLoop) -> None:
        """The loop's steps settled their own holds: release the one held for a step never made,
        and record what all the steps used."""
        record = ex.record
        if self.budgets is not None and record.admission is not None:
            self.budgets.settle(record.admission, record.model, {})
            record.admission = None
        record.usage = dict(loop.totals)

    def _admit(self, ex: Exchange, request: dict[str, Any], routes: list[Route]) -> None:
        """Name the first candidate on the record, and hold the request's estimate on its budgets
        and rate limits; raises 402 or 429.

        The record is filled here, on the request's thread, so a stream committed before its
        upstream opens still names a provider and model; each candidate tried updates it. The USD
        estimate is priced for the first candidate's model; :meth:`Ledger.enter` settles the holds to
        the real usage of the model that answered.
        """
        if not routes:
            return
        provider, model = self.router.target(routes[0], ex.ctx.requested_model)
        record = ex.record
        record.provider, record.model, record.route_reason = provider.name, model, routes[0].reason
        if self.budgets is not None:
            estimated = ex.facts.estimated_tokens if request is ex.upstream else None
            record.admission = self.budgets.admit(record.api_key, record.session_id, model, request,
                                                  estimated_tokens=estimated)

    # -- the prompt cache -------------------------------------------------------------------------

    def _cached(self, ex: Exchange, routes: list[Route]) -> dict[str, Any] | None:
        """The stored answer of the first candidate to the upstream request, shaped for this client."""
        if not routes or not ex.facts.cacheable:
            return None
        provider, model = self.router.target(routes[0], ex.ctx.requested_model)
        stored = self.cache.get(ex.facts.cache_key(provider.name, model))
        self.metrics.cache_lookup(hit=stored is not None)
        if stored is None:
            return None
        record = ex.record
        record.provider, record.model, record.route_reason = provider.name, model, "prompt_cache"
        hit = hit_message(stored, prompt_tokens=prompt_tokens_of(stored), request_id=ex.ctx.request_id,
                          requested_model=ex.ctx.requested_model)
        record.usage = usage_counts(hit["usage"])
        return hit

    def _store(self, ex: Exchange, message: dict[str, Any]) -> None:
        """Keep ``message`` as the answer of the model that gave it, when the request may be cached."""
        record = ex.record
        if ex.facts.cacheable and record.provider and record.model:
            self.cache.put(ex.facts.cache_key(record.provider, record.model), message)

class _AgentSteps:
    """The agent loop's model calls for one exchange: candidates, retries, attempts on its record."""

    def __init__(self, candidates: CandidateChain, ex: Exchange, routes: list[Route]) -> None:
        self.candidates, self.ex, self.routes = candidates, ex, routes

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """A whole answer to one step's ``request``."""
        reply = self.candidates.run(self.ex, self.routes, lambda provider, ctx: provider.send(request, ctx))
        self.ex.record.model = reply.model
        return reply.message

    def open(self, request: dict[str, Any]) -> UpstreamStream:
        """An open stream answering one step's ``request``."""
        stream = self.candidates.run(self.ex, self.routes, lambda provider, ctx: provider.open_stream(request, ctx))
        self.ex.record.model = stream.model
        return stream


class _AgentBudget:
    """The exchange's budget holds across the loop's steps."""

    def __init__(self, orchestrator: Orchestrator, ex: Exchange, routes: list[Route]) -> None:
        self.orchestrator, self.ex, self.routes = orchestrator, ex, routes

    def spent(self, usage: dict[str, int]) -> None:
        """Settle the current hold to what the step used."""
        budgets, record = self.orchestrator.budgets, self.ex.record
        if budgets is not None and record.admission is not None:
            budgets.settle(record.admission, record.model, usage)
            record.admission = None

    def admit(self, request: dict[str, Any]) -> str | None:
        """Hold the next step's estimate; why it may not run, or None."""
        try:
            self.orchestrator._admit(self.ex, request, self.routes)
        except (BillingError, RateLimitError) as exc:
            return f"a budget or rate limit ({exc.message})"
        return None
