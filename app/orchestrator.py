"""One request end to end: :meth:`Orchestrator.handle` owns the exchange from routing to its record.

For each candidate from :class:`app.routing.Router` the orchestrator asks the provider's circuit
breaker, calls the provider (retrying 429/5xx/connect errors with full-jitter backoff inside the
retry budget), and on a failure **before the first byte** hands over to the next candidate,
counting why. When the budget ends the retries of the last candidate, the client gets 429 or 529
with ``retry-after`` and backs off itself. Once a stream has been opened nothing is retried or
re-routed. In server mode the turn runs through the agent loop; either way the prompt cache is
consulted first, and an answer is stored when no server tool ran for it.

Every exit — an answer, a stream's end, a refusal, a failure at any step — reaches
:meth:`Orchestrator.settle` once: the worker slot is given back, the budget holds are settled to
the real usage, the breaker has heard the outcome, and the usage row (with every attempt) and the
new transcript turns are queued for the background writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from app.accounting.budgets import Budgets
from app.accounting.pricing import PriceTable
from app.accounting.usage import Attempt, RequestRecord, usage_counts, write_record
from app.agent.loop import AgentLoop, AgentSource, Turn, run_to_message
from app.agent.policy import LoopLimits
from app.agent.service import Agent
from app.anthropic.encoded import Encoded
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
from app.config import Config
from app.errors import (
    TRANSPORT_ERRORS,
    BillingError,
    CircuitOpenError,
    ConnectFailedError,
    ConnectRefusedError,
    LynkrError,
    OverloadedError,
    ProviderNotConfiguredError,
    RateLimitError,
    ReadTimeoutError,
    UpstreamError,
    UpstreamTimeoutError,
)
from app.exchange import Exchange
from app.logging import get_logger
from app.metrics.recorder import NULL_METRICS, MetricsRecorder, outcome_of
from app.providers.base import CallContext, Provider, UpstreamStream
from app.resilience.retry import (
    BreakerRegistry,
    CircuitBreaker,
    RetryPolicy,
    RetryState,
    client_retry_after,
    counts_as_failure,
)
from app.routing import Route, Router, RoutingRule
from app.sources import StreamSource, StreamStart, begin
from app.storage.recorder import Recorder
from app.storage.transcripts import record_exchange
from app.tools.base import ModelCall, ToolError

log = get_logger("orchestrator")
T = TypeVar("T")
CLIENT_GONE = 499  # the status recorded for a stream whose client went away
TOOL_MODEL_MAX_TOKENS = 4096  # a review or release notes; the model's own limit clamps it further
PROBE_POLL_S = 0.05  # how often a request waiting on another's half-open probe looks again
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
        self.recorder = recorder
        self.breakers = breakers
        self.retry = retry
        self.sleep = sleep
        self.cache = cache if cache is not None else PromptCache(enabled=False)
        self.prices = prices or PriceTable()
        self.budgets = budgets
        self.metrics = metrics
        self.agent = agent
        self.router = Router(config, providers, breakers, rules or [], metrics.fallback)

    # -- the exchange -----------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> Answer | StreamAnswer:
        """Answer ``ex``: a whole message, or a stream that has begun.

        A failure before the answer raises the :class:`LynkrError` for the client, with the
        exchange already settled.
        """
        try:
            routes = self.router.candidates(ex.body, ex.facts)
            self._admit(ex, ex.body, routes)
            turn = self.agent.prepare(ex.body, ex.record) if self.agent is not None else None
            if turn is not None:
                ex.use_upstream(turn.request)
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
        self.finish(record, ex.body, message, ex.started, ex.ctx.encoded)

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
        reply = self._run(ex, routes, lambda provider, ctx: provider.send(ex.upstream, ctx))
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
            first = self._run(ex, routes, lambda provider, ctx: provider.open_stream(ex.upstream, ctx))
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
        return AgentLoop(turn, _AgentSteps(self, ex, routes), LoopLimits.from_config(self.config),
                         _AgentBudget(self, ex, routes), self.config, ex.record.session_id, streaming=streaming)

    def _model_call(self, ex: Exchange, routes: list[Route]) -> ModelCall:
        """How a tool asks the model (diff review, release notes): the same candidates, retries,
        attempt records and budgets as the request itself; a refusal or failure is the tool's error."""

        def ask(system: str, prompt: str) -> str:
            request = {"model": ex.body["model"], "max_tokens": TOOL_MODEL_MAX_TOKENS, "system": system,
                       "messages": [{"role": "user", "content": prompt}]}
            record = ex.record
            try:
                admission = (self.budgets.admit(record.api_key, record.session_id, record.model, request)
                             if self.budgets is not None else None)
                reply = self._run(ex, routes, lambda provider, ctx: provider.send(request, ctx))
            except LynkrError as exc:
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
        estimate is priced for the first candidate's model; :meth:`finish` settles the holds to
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

    # -- the candidate chain ----------------------------------------------------------------------

    def _run(self, ex: Exchange, routes: list[Route], call: Callable[[Provider, CallContext], T]) -> T:
        """``call`` on each candidate in turn until one answers; its attempts go on the record."""
        ctx, record = ex.ctx, ex.record
        last_error: LynkrError | None = None
        handed_over: str | None = None  # why the previous candidate was left
        for position, route in enumerate(routes):
            provider, model = self.router.target(route, ctx.requested_model)
            record.provider, record.model, record.route_reason = provider.name, model, route.reason
            has_next = position + 1 < len(routes)
            call_ctx = replace(ctx, model_override=route.model) if route.model else ctx
            attempt_reason = f"{route.reason}:{handed_over}" if handed_over else route.reason
            try:
                result = self._with_retries(provider, call_ctx, record, call, attempt_reason, has_fallback=has_next)
            except LynkrError as exc:
                last_error = exc
                reason = handed_over = fallback_reason(exc)
                if not has_next or reason is None:
                    if position:
                        self.metrics.fallback_result(False)
                    raise
                self.metrics.fallback(provider.name, routes[position + 1].provider, reason)
                log.warning("falling back from %s to %s: %s", provider.name, routes[position + 1].provider,
                            reason, extra={"reason": reason})
                continue
            if position:
                self.metrics.fallback_result(True)
            return result
        raise last_error or OverloadedError("No provider is available for this request.")

    def _with_retries(self, provider: Provider, ctx: CallContext, record: RequestRecord,
                      call: Callable[[Provider, CallContext], T], route_reason: str, *, has_fallback: bool) -> T:
        """``call`` on ``provider`` with retries; its attempts are recorded under ``route_reason``.

        The breaker is asked once and hears one verdict for the whole request: a failure only when
        every retry failed, so a blip that one retry rides out counts nothing.
        """
        breaker = self.breakers.get(provider.name)
        state = self.retry.start(has_fallback=has_fallback)
        if not self._breaker_admits(breaker, state, last_resort=not has_fallback):
            raise CircuitOpenError(f"{provider.name} is failing; its circuit breaker is open.",
                                   headers={"retry-after": client_retry_after(breaker.open_for_s())},
                                   provider=provider.name)
        while True:
            started = time.perf_counter()
            try:
                result = call(provider, ctx)
            except ProviderNotConfiguredError:
                breaker.release()
                raise
            except LynkrError as exc:
                attempt = self._attempt(record, provider, ctx, started, route_reason, status=exc.status,
                                        error_type=exc.error_type)
                transport = isinstance(exc, TRANSPORT_ERRORS)
                status = None if transport else exc.status
                outcome = outcome_of(status, exc)
                self.metrics.upstream_call(provider.name, attempt.model, outcome, (attempt.latency_ms or 0) / 1000)
                wait = state.should_retry(status, isinstance(exc, ConnectFailedError), exc.retry_after,
                                          refused=isinstance(exc, ConnectRefusedError))
                if wait is None:
                    if transport or counts_as_failure(status):
                        breaker.record_failure()
                    else:
                        breaker.release()
                    exc.heard_by_breaker = True
                    if state.over_budget is not None and not has_fallback:
                        raise past_budget(exc, state.over_budget) from exc
                    raise
                self.metrics.retry(provider.name, outcome)
                self.sleep(wait)
                continue
            except BaseException:
                breaker.release()  # a bug is no verdict on the upstream, and must not hold a probe slot
                raise
            breaker.record_success()
            attempt = self._attempt(record, provider, ctx, started, route_reason, status=200,
                                    model=getattr(result, "model", None))
            self.metrics.upstream_call(provider.name, attempt.model, "success", (attempt.latency_ms or 0) / 1000)
            return result

    def _breaker_admits(self, breaker: CircuitBreaker, state: RetryState, *, last_resort: bool) -> bool:
        """Whether ``breaker`` lets the request through.

        A candidate with others after it is refused at once while its breaker refuses. The last
        candidate is never refused for it: it goes as the half-open probe, or, while another
        request probes, waits for that verdict (one probe at a time) as long as the retry budget
        allows.
        """
        if breaker.allow(last_resort=last_resort):
            return True
        while last_resort and state.spent_ms + PROBE_POLL_S * 1000 <= self.retry.budget_ms:
            self.sleep(PROBE_POLL_S)
            if breaker.allow(last_resort=True):
                return True
        return False

    # -- recording --------------------------------------------------------------------------------

    def finish(self, record: RequestRecord, request: dict[str, Any], message: dict[str, Any] | None,
               started: float, encoded: Encoded | None = None) -> None:
        """Settle the request's budget holds, then queue its usage row and new turns for writing
        (``encoded``: the request's messages as the client's call encoded them, whose notes keep
        each turn's digest)."""
        record.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        if message is not None and not record.usage:
            record.usage = usage_counts(message.get("usage"))
        if record.attempts and message is not None:
            record.attempts[-1].usage = record.usage
        self._cost(record)
        if self.budgets is not None and record.admission is not None:
            # A prompt-cache hit calls no upstream, and a failed request gave the client nothing (a
            # stream cut mid-way included): neither spends the budget. A client that went away did.
            failed = record.status is not None and record.status >= 400 and record.status != CLIENT_GONE
            spent = {} if record.route_reason == "prompt_cache" or failed else record.usage
            self.budgets.settle(record.admission, record.model, spent)
            record.admission = None
        if record.provider:
            self.metrics.routed(record.provider, record.route_reason)
            self.metrics.tokens(record.provider, record.model, record.usage)
        session_id = record.session_id if self.config.session_store_enabled else None
        # Only a job that stores turns holds on to the messages: a queued job must not keep a
        # large body alive while the writer catches up.
        messages = (request.get("messages") or []) if session_id else []
        given = encoded.notes_for(messages) if encoded is not None and session_id else None

        def job() -> None:
            write_record(record)
            if session_id:
                record_exchange(session_id, record.api_key, messages, message if record.status == 200 else None,
                                given or ())

        self.recorder.submit(job, holds_bytes=record.body_bytes if session_id else 0)

    def _cost(self, record: RequestRecord) -> None:
        for attempt in record.attempts:
            attempt.cost_usd = self.prices.cost_usd(attempt.model, attempt.usage)
        cached = record.route_reason == "prompt_cache"
        record.cost_usd = 0.0 if cached else self.prices.cost_usd(record.model, record.usage)
        if not record.provider or not record.model:
            return
        if record.cost_usd:
            self.metrics.add_cost(record.provider, record.model, record.cost_usd)
        if cached:
            # What the hit would have cost upstream: its prompt as fresh input, plus its output.
            usage = record.usage or {}
            avoided = self.prices.cost_usd(record.model, {"input_tokens": usage.get("cache_read_input_tokens", 0),
                                                          "output_tokens": usage.get("output_tokens", 0)})
        else:
            avoided = self._routing_saving(record)
        if avoided:
            self.metrics.add_cost_savings(record.provider, avoided)

    def _routing_saving(self, record: RequestRecord) -> float | None:
        """What routing saved: the usage priced on the default provider's model minus its cost on the
        model that answered, when that model differs, both are priced and the difference is positive."""
        default = self.providers.get(self.config.model_provider)
        if default is None or record.cost_usd is None or not record.model_requested:
            return None
        default_model = default.upstream_model(record.model_requested)
        would_cost = None if default_model == record.model else self.prices.cost_usd(default_model, record.usage)
        if would_cost is None or would_cost <= record.cost_usd:
            return None
        return round(would_cost - record.cost_usd, 8)

    @staticmethod
    def _attempt(record: RequestRecord, provider: Provider, ctx: CallContext, started: float, route_reason: str, *,
                 status: int, error_type: str | None = None, model: str | None = None) -> Attempt:
        attempt = Attempt(
            provider=provider.name, model=model or provider.model_for(ctx),
            status=status, error_type=error_type, route_reason=route_reason,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        record.attempts.append(attempt)
        return attempt


def past_budget(error: LynkrError, wait_s: float) -> LynkrError:
    """The client's answer when the retry budget ended the retries of ``error``.

    A 429 or 529 keeps its status and body; any other retryable failure (5xx, no connection)
    becomes 529 ``overloaded_error``. Both carry ``retry-after``: the wait the budget refused,
    so the client backs off instead of retrying at once.
    """
    headers = {**error.headers, "retry-after": client_retry_after(wait_s)}
    if not isinstance(error, TRANSPORT_ERRORS) and error.status in (429, 529):
        return LynkrError(error.message, status=error.status, error_type=error.error_type, headers=headers,
                          body=error.body, provider=error.provider)
    return OverloadedError(f"{error.message} Retrying it would pass the retry budget (API_RETRY_BUDGET_MS); "
                           f"retry later.", headers=headers, provider=error.provider)


def fallback_reason(error: LynkrError) -> str | None:
    """Why a failed candidate may hand over to the next, or None when it must not."""
    if isinstance(error, CircuitOpenError):
        return "circuit_breaker"
    if isinstance(error, ProviderNotConfiguredError):
        return "not_configured"
    if isinstance(error, ConnectFailedError) and not isinstance(error, UpstreamTimeoutError | ReadTimeoutError):
        return "service_unavailable"
    if isinstance(error, UpstreamTimeoutError | ReadTimeoutError) or error.status == 504:
        return "timeout"
    if error.status == 429:
        return "rate_limited"
    if error.status in (503, 529):
        return "service_unavailable"
    if error.status >= 500:
        return "error"
    return None


class _AgentSteps:
    """The agent loop's model calls for one exchange: candidates, retries, attempts on its record."""

    def __init__(self, orchestrator: Orchestrator, ex: Exchange, routes: list[Route]) -> None:
        self.orchestrator, self.ex, self.routes = orchestrator, ex, routes

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """A whole answer to one step's ``request``."""
        reply = self.orchestrator._run(self.ex, self.routes, lambda provider, ctx: provider.send(request, ctx))
        self.ex.record.model = reply.model
        return reply.message

    def open(self, request: dict[str, Any]) -> UpstreamStream:
        """An open stream answering one step's ``request``."""
        stream = self.orchestrator._run(self.ex, self.routes,
                                        lambda provider, ctx: provider.open_stream(request, ctx))
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
