"""The candidate chain: one call tried on each candidate provider in turn, with retries.

For each candidate from :class:`app.routing.Router` the chain asks the provider's circuit
breaker, calls the provider (retrying 429/5xx/connect errors with full-jitter backoff inside the
retry budget), and on a failure **before the first byte** hands over to the next candidate,
counting why. When the budget ends the retries of the last candidate, the client gets 429 or 529
with ``retry-after`` and backs off itself. Every attempt goes on the exchange's record; the
breaker hears one verdict per candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from app.accounting.usage import Attempt, RequestRecord
from app.errors import (
    TRANSPORT_ERRORS,
    CircuitOpenError,
    ConnectFailedError,
    ConnectRefusedError,
    LynkrError,
    OverloadedError,
    ProviderNotConfiguredError,
    ReadTimeoutError,
    UpstreamTimeoutError,
)
from app.exchange import Exchange
from app.logging import get_logger
from app.metrics.recorder import MetricsRecorder, outcome_of
from app.providers.base import CallContext, Provider
from app.resilience.retry import (
    BreakerRegistry,
    CircuitBreaker,
    RetryPolicy,
    RetryState,
    client_retry_after,
    counts_as_failure,
)
from app.routing import Route, Router

log = get_logger("candidates")
T = TypeVar("T")
PROBE_POLL_S = 0.05  # how often a request waiting on another's half-open probe looks again


class CandidateChain:
    """Tries a call on an exchange's candidates: breaker, retries, fallback, attempts recorded."""

    def __init__(self, router: Router, breakers: BreakerRegistry, retry: RetryPolicy, metrics: MetricsRecorder,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.router = router
        self.breakers = breakers
        self.retry = retry
        self.metrics = metrics
        self.sleep = sleep

    def run(self, ex: Exchange, routes: list[Route], call: Callable[[Provider, CallContext], T]) -> T:
        """``call`` on each candidate in turn until one answers; its attempts go on the record."""
        ctx, record = ex.upstream_ctx, ex.record
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
