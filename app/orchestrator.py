"""One request end to end: route → candidates with retries, breakers and fallback → answer.

The orchestrator is plain blocking code. For each candidate from :func:`app.routing.choose`
it asks the provider's circuit breaker, calls the provider (retrying 429/5xx/connect errors
with full-jitter backoff inside the retry budget), and on a failure **before the first byte**
hands over to the next candidate, counting why. When the budget ends the retries of the last
candidate, the client gets 429 or 529 with ``retry-after`` and backs off itself. Once a stream
has been opened nothing is retried or re-routed. Every attempt is kept in the
:class:`~app.accounting.usage.RequestRecord` that is written, with new transcript turns, in the background
once the response has been sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from app.accounting.budgets import Budgets
from app.accounting.pricing import PriceTable
from app.accounting.usage import Attempt, RequestRecord, usage_counts, write_record
from app.anthropic import tokens
from app.anthropic.events import StreamBuilder
from app.cache.prompt import MissStreamBuilder, PromptCache, hit_message, miss_usage, prompt_tokens_of, storable_answer
from app.config import Config
from app.errors import LynkrError, OverloadedError, PromptTooLongError
from app.logging import get_logger
from app.metrics.recorder import NULL_METRICS, MetricsRecorder, outcome_of
from app.providers.base import CallContext, Provider, Reply, UpstreamStream, has_images
from app.resilience.retry import BreakerRegistry, RetryPolicy, client_retry_after, counts_as_failure
from app.routing import Route, RoutingRule, choose, rule_route
from app.storage.recorder import Recorder
from app.storage.transcripts import record_exchange

log = get_logger("orchestrator")
T = TypeVar("T")
BREAKER_RETRY_AFTER = "30"


class Orchestrator:
    """Routes requests to providers and records what happened."""

    def __init__(self, config: Config, providers: dict[str, Provider], recorder: Recorder,
                 breakers: BreakerRegistry, retry: RetryPolicy, rules: list[RoutingRule] | None = None,
                 sleep: Callable[[float], None] = time.sleep, cache: PromptCache | None = None,
                 metrics: MetricsRecorder = NULL_METRICS, prices: PriceTable | None = None,
                 budgets: Budgets | None = None) -> None:
        self.config = config
        self.providers = providers
        self.recorder = recorder
        self.breakers = breakers
        self.retry = retry
        self.rules = rules or []
        self.sleep = sleep
        self.cache = cache if cache is not None else PromptCache(enabled=False)
        self.prices = prices or PriceTable()
        self.budgets = budgets
        self.metrics = metrics
        self.on_fallback: Callable[[str, str, str], None] = metrics.fallback

    def routes(self, request: dict[str, Any]) -> list[Route]:
        """The candidates for ``request`` that can take it, in order.

        A candidate whose model cannot take the request (images without vision, a prompt over
        its context window, tools without tool support) is skipped while another remains; the
        last one is kept so its own error reaches the client — except a prompt no candidate
        can hold, which is refused in the wording on which Claude Code compacts.
        """
        chain = [r for r in choose(request, self.config, self._configured) if r.provider in self.providers]
        estimated = tokens.estimate_tokens(request)
        ruled = rule_route(self.rules, request, estimated, has_images(request)) if self.rules else None
        if ruled is not None:
            chain = [ruled, *[r for r in chain if r.provider != ruled.provider]]
        # An open breaker is passed over before its provider is asked anything (Ollama's
        # capability probe would contact the failing server); the last candidate stays.
        open_breakers = [r for r in chain if self.breakers.get(r.provider).rejecting()]
        if len(open_breakers) < len(chain):
            chain = [r for r in chain if r not in open_breakers]
            for skipped in open_breakers:
                self.on_fallback(skipped.provider, chain[0].provider, "circuit_breaker")
        reasons = {r.provider: self.providers[r.provider].incompatibility(request, estimated, r.model) for r in chain}
        kept = [r for r in chain if reasons[r.provider] is None]
        for route in chain:
            if reasons[route.provider] and kept:
                self.on_fallback(route.provider, kept[0].provider, reasons[route.provider])
        if kept:
            return kept
        if chain and all(reason == "context_too_long" for reason in reasons.values()):
            window = max(self._context_window(r.provider, request) for r in chain)
            raise PromptTooLongError(estimated, window)
        return chain[-1:]

    def _context_window(self, name: str, request: dict[str, Any]) -> int:
        provider = self.providers[name]
        return provider.caps(provider.upstream_model(str(request.get("model", "")))).context_window

    def _configured(self, name: str) -> bool:
        provider = self.providers.get(name)
        return provider is not None and provider.configured

    def complete(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord,
                 routes: list[Route] | None = None, *, cache: bool = True) -> Reply:
        """A non-streaming answer from the first candidate that gives one.

        ``cache=False`` keeps the answer out of the prompt cache (agent-loop steps, whose
        prompts hold tool results that describe the workspace at one moment).
        """
        reply = self._run(request, ctx, record, lambda provider, call_ctx: provider.send(request, call_ctx), routes)
        if cache and self.cache.cacheable_request(request) and storable_answer(reply.message):
            reply.message["usage"] = miss_usage(reply.message.get("usage") or {},
                                                lambda: tokens.count_tokens(request))
            self.cache.put(self.cache.key(request, reply.provider, reply.model), reply.message)
        record.model = reply.model
        record.usage = usage_counts(reply.message.get("usage"))
        record.attempts[-1].usage = record.usage
        return reply

    def opener(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord,
               routes: list[Route] | None = None) -> Callable[[], UpstreamStream]:
        """A function that opens the upstream stream (run on the stream's helper thread)."""

        def open_stream() -> UpstreamStream:
            stream = self._run(request, ctx, record,
                               lambda provider, call_ctx: provider.open_stream(request, call_ctx), routes)
            record.model = stream.model
            return stream

        return open_stream

    def target(self, route: Route, requested_model: str) -> tuple[Provider, str]:
        """The provider a candidate names and the upstream model it would call."""
        provider = self.providers[route.provider]
        return provider, route.model or provider.upstream_model(requested_model)

    def admit(self, request: dict[str, Any], record: RequestRecord, routes: list[Route]) -> None:
        """Name the first candidate on the record, and hold the request's estimate on its budgets
        and rate limits; raises 402 or 429.

        The record is filled here, on the request's thread, so a stream committed before its
        upstream opens still names a provider and model; each candidate tried updates it. The USD
        estimate is priced for the first candidate's model; :meth:`finish` settles the holds to
        the real usage of the model that answered.
        """
        if not routes:
            return
        provider, model = self.target(routes[0], str(request.get("model", "")))
        record.provider, record.model, record.route_reason = provider.name, model, routes[0].reason
        if self.budgets is not None:
            record.admission = self.budgets.admit(record.api_key, record.session_id, model, request)

    # -- the prompt cache -------------------------------------------------------------------------

    def cached(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord,
               routes: list[Route]) -> dict[str, Any] | None:
        """The stored answer of the first candidate to ``request``, shaped for this client, or None."""
        if not routes or not self.cache.cacheable_request(request):
            return None
        provider, model = self.target(routes[0], ctx.requested_model)
        stored = self.cache.get(self.cache.key(request, provider.name, model))
        self.metrics.cache_lookup(hit=stored is not None)
        if stored is None:
            return None
        record.provider, record.model, record.route_reason = provider.name, model, "prompt_cache"
        hit = hit_message(stored, prompt_tokens=prompt_tokens_of(stored), request_id=ctx.request_id,
                          requested_model=ctx.requested_model)
        record.usage = usage_counts(hit["usage"])
        return hit

    def stream_builder(self, request: dict[str, Any], *, message_id: str, model: str) -> StreamBuilder:
        """The builder for a streamed answer; on a cacheable miss it completes the usage."""
        if self.cache.cacheable_request(request):
            return MissStreamBuilder(prompt_tokens=lambda: tokens.count_tokens(request),
                                     message_id=message_id, model=model)
        return StreamBuilder(message_id=message_id, model=model)

    # -- the candidate chain ----------------------------------------------------------------------

    def _run(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord,
             call: Callable[[Provider, CallContext], T], routes: list[Route] | None = None) -> T:
        routes = self.routes(request) if routes is None else routes
        last_error: LynkrError | None = None
        handed_over: str | None = None  # why the previous candidate was left
        for position, route in enumerate(routes):
            provider, model = self.target(route, ctx.requested_model)
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
                self.on_fallback(provider.name, routes[position + 1].provider, reason)
                log.warning("falling back from %s to %s: %s", provider.name, routes[position + 1].provider,
                            reason, extra={"reason": reason})
                continue
            if position:
                self.metrics.fallback_result(True)
            return result
        raise last_error or OverloadedError("No provider is available for this request.")

    def _with_retries(self, provider: Provider, ctx: CallContext, record: RequestRecord,
                      call: Callable[[Provider, CallContext], T], route_reason: str, *, has_fallback: bool) -> T:
        """``call`` on ``provider`` with retries; its attempts are recorded under ``route_reason``."""
        breaker = self.breakers.get(provider.name)
        state = self.retry.start(has_fallback=has_fallback)
        while True:
            if not breaker.allow():
                raise OverloadedError(f"{provider.name} is failing; its circuit breaker is open.", status=503,
                                      headers={"retry-after": BREAKER_RETRY_AFTER}, provider=provider.name,
                                      transport="circuit_open")
            started = time.perf_counter()
            try:
                result = call(provider, ctx)
            except LynkrError as exc:
                if exc.transport == "not_configured":
                    breaker.release()
                    raise
                attempt = self._attempt(record, provider, ctx, started, route_reason, status=exc.status,
                                        error_type=exc.error_type)
                status = None if exc.transport else exc.status
                outcome = outcome_of(status, exc.transport)
                self.metrics.upstream_call(provider.name, attempt.model, outcome, (attempt.latency_ms or 0) / 1000)
                if exc.transport or counts_as_failure(status):
                    breaker.record_failure()
                else:
                    breaker.release()
                wait = state.should_retry(status, exc.transport in ("refused", "connect"), exc.retry_after,
                                          refused=exc.transport == "refused")
                if wait is None:
                    if state.over_budget is not None and not has_fallback:
                        raise past_budget(exc, state.over_budget) from exc
                    raise
                self.metrics.retry(provider.name, outcome)
                self.sleep(wait)
                continue
            breaker.record_success()
            attempt = self._attempt(record, provider, ctx, started, route_reason, status=200,
                                    model=getattr(result, "model", None))
            self.metrics.upstream_call(provider.name, attempt.model, "success", (attempt.latency_ms or 0) / 1000)
            return result

    # -- recording --------------------------------------------------------------------------------

    def finish(self, record: RequestRecord, request: dict[str, Any], message: dict[str, Any] | None,
               started: float) -> None:
        """Settle the request's budget holds, then queue its usage row and new turns for writing."""
        record.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        if message is not None and not record.usage:
            record.usage = usage_counts(message.get("usage"))
        if record.attempts and message is not None:
            record.attempts[-1].usage = record.usage
        self._cost(record)
        if self.budgets is not None and record.admission is not None:
            # A prompt-cache hit calls no upstream, so it spends nothing.
            self.budgets.settle(record.admission, record.model,
                                {} if record.route_reason == "prompt_cache" else record.usage)
        if record.provider:
            self.metrics.routed(record.provider, record.route_reason)
            self.metrics.tokens(record.provider, record.model, record.usage)
        store_turns = self.config.session_store_enabled and record.session_id
        # Only a job that stores turns holds on to the messages: a queued job must not keep a
        # large body alive while the writer catches up.
        messages = (request.get("messages") or []) if store_turns else []

        def job() -> None:
            write_record(record)
            if store_turns:
                record_exchange(record.session_id, record.api_key, messages,
                                message if record.status == 200 else None)

        self.recorder.submit(job, holds_bytes=record.body_bytes if store_turns else 0)

    def stream_done(self, record: RequestRecord, request: dict[str, Any], started: float,
                    *, cache: bool = True) -> Callable[[StreamBuilder, LynkrError | None], None]:
        """The callback a finished stream reports to (``cache=False``: never store the answer)."""

        def done(builder: StreamBuilder, failure: LynkrError | None) -> None:
            message = builder.accumulator.message or None
            if failure is not None:
                record.status, record.error_type = failure.status, failure.error_type
                if failure.transport is None and counts_as_failure(failure.status) and record.provider:
                    self.breakers.get(record.provider).record_failure()
            elif not builder.grammar.stopped:
                record.status, record.error_type = 499 if not builder.grammar.errored else 502, "incomplete"
            else:
                record.status = 200
                if (cache and message is not None and record.provider and record.model
                        and self.cache.cacheable_request(request)):
                    self.cache.put(self.cache.key(request, record.provider, record.model), message)
            self.finish(record, request, message, started)

        return done

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
    if error.transport is None and error.status in (429, 529):
        return LynkrError(error.message, status=error.status, error_type=error.error_type, headers=headers,
                          body=error.body, provider=error.provider)
    return OverloadedError(f"{error.message} Retrying it would pass the retry budget (API_RETRY_BUDGET_MS); "
                           f"retry later.", headers=headers, provider=error.provider, transport=error.transport)


def fallback_reason(error: LynkrError) -> str | None:
    """Why a failed candidate may hand over to the next, or None when it must not."""
    if error.transport == "circuit_open":
        return "circuit_breaker"
    if error.transport == "not_configured":
        return "not_configured"
    if error.transport == "timeout" or error.status == 504:
        return "timeout"
    if error.transport in ("refused", "connect"):
        return "service_unavailable"
    if error.status == 429:
        return "rate_limited"
    if error.status in (503, 529):
        return "service_unavailable"
    if error.status >= 500:
        return "error"
    return None
