"""Budgets per key and per session, and rate limits per key, on shared counters.

Before a model request is sent, :meth:`Budgets.admit` *holds* an estimate on every limit that
applies (one request; tokens = the prompt estimate + ``max_tokens``; micro-USD at the model's
price): a budget (daily, monthly, session) through :meth:`app.accounting.ratelimit.Counters.take`,
which refuses once a counter has reached its limit; a per-minute rate limit through
:meth:`~app.accounting.ratelimit.Counters.take_window`, a sliding window that never holds more than
the limit in any 60 s. A refusal gives back what was held and raises ``BillingError`` (402,
naming the budget and when it resets) or ``RateLimitError`` (429 with the seconds until the
window has room as ``retry-after``). When the request ends, :meth:`Budgets.settle` replaces
each hold by the real usage, synchronously — the usage rows are written later in the
background, but the counters must be right for the next request. A limit is therefore never
exceeded by more than what the one request that crossed it used.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.accounting.pricing import PriceTable
from app.accounting.ratelimit import WINDOW_S, Counters
from app.anthropic.tokens import estimate_tokens
from app.errors import BillingError, RateLimitError

MICRO = 1_000_000  # USD budgets are counted in micro-dollars
HOLD_CAP_INPUT_TOKENS = 200_000  # no prompt holds more
SESSION_TTL_S = 90 * 86_400


@dataclass(frozen=True)
class Limit:
    """One configured limit: who it applies to, over which period, in which unit."""

    owner: str  # "key" | "session"
    period: str  # "daily" | "monthly" | "session" | "minute"
    unit: str  # "tokens" | "usd" | "requests"
    limit: float


@dataclass(frozen=True)
class Hold:
    """An amount taken from one counter (or, with ``entry``, one rate window) for a request in flight."""

    limit: Limit
    scope: str
    period: str
    amount: int
    ttl_s: int
    entry: str | None = None


@dataclass
class Admission:
    """What :meth:`Budgets.admit` held for one request, to be settled when it ends."""

    holds: list[Hold] = field(default_factory=list)


class Budgets:
    """Admits model requests against budgets and rate limits, and settles them to real usage."""

    def __init__(self, limits: list[Limit], counters: Counters, prices: PriceTable,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.limits = [limit for limit in limits if limit.limit > 0]
        self.counters = counters
        self.prices = prices
        self.clock = clock

    @classmethod
    def from_config(cls, config: Any, counters: Counters, prices: PriceTable, **kwargs: Any) -> Budgets:
        """The limits configured by ``BUDGET_*`` and ``RATE_LIMIT_*`` (0 or unset: none)."""
        return cls([
            Limit("key", "minute", "requests", config.rate_limit_requests_per_minute),
            Limit("key", "minute", "tokens", config.rate_limit_tokens_per_minute),
            Limit("key", "daily", "tokens", config.budget_key_daily_tokens),
            Limit("key", "monthly", "tokens", config.budget_key_monthly_tokens),
            Limit("key", "daily", "usd", config.budget_key_daily_usd),
            Limit("key", "monthly", "usd", config.budget_key_monthly_usd),
            Limit("session", "session", "tokens", config.budget_session_tokens),
            Limit("session", "session", "usd", config.budget_session_usd),
        ], counters, prices, **kwargs)

    @property
    def enabled(self) -> bool:
        """Whether any limit is configured."""
        return bool(self.limits)

    def admit(self, key_id: str | None, session_id: str | None, model: str | None,
              request: dict[str, Any], *, estimated_tokens: int | None = None) -> Admission:
        """Hold an estimate of ``request`` on every applicable limit; raises 402/429 when one is spent.

        ``estimated_tokens`` is the routing estimate of the prompt when the caller has it already.
        """
        admission = Admission()
        if not self.limits:
            return admission
        now = self.clock()
        tokens = estimate_hold_tokens(request, estimated_tokens)
        try:
            for limit in self.limits:
                if limit.owner == "session" and not session_id:
                    continue
                owner = session_id if limit.owner == "session" else (key_id or "anonymous")
                amount = self._amount(limit, model, tokens, request, key_id, session_id)
                scope = f"{limit.owner}:{owner}:{limit.period}:{limit.unit}"
                if limit.period == "minute":
                    admission.holds.append(self._take_window(limit, scope, amount, key_id, now))
                    continue
                hold = Hold(limit, scope, _period(limit.period, now), amount, _ttl(limit.period))
                taken, used = self.counters.take(hold.scope, hold.period, amount, _whole(limit), hold.ttl_s)
                if not taken:
                    raise _refusal(limit, used, key_id, session_id, now)
                admission.holds.append(hold)
        except BaseException:
            self.release(admission)
            raise
        return admission

    def settle(self, admission: Admission | None, model: str | None, usage: dict[str, Any] | None) -> None:
        """Replace each hold by what the request really used (``usage`` None or empty: nothing)."""
        if admission is None:
            return
        usage = usage or {}
        used_tokens = sum(int(usage.get(k) or 0) for k in (
            "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
        for hold in admission.holds:
            if hold.limit.unit == "requests":
                continue
            if hold.limit.unit == "tokens":
                actual = used_tokens
            else:
                cost = self.prices.cost_usd(model, usage)
                if cost is None:  # a fallback to a model with no price keeps the estimate
                    continue
                actual = math.ceil(cost * MICRO)
            if actual != hold.amount:
                self._change(hold, actual)
        admission.holds = []

    def release(self, admission: Admission) -> None:
        """Give back everything held (a refused or never-sent request)."""
        for hold in admission.holds:
            self._change(hold, 0)
        admission.holds = []

    def _take_window(self, limit: Limit, scope: str, amount: int, key_id: str | None, now: datetime) -> Hold:
        entry = uuid.uuid4().hex
        taken = self.counters.take_window(scope, entry, amount, _whole(limit), now.timestamp())
        if not taken.taken:
            wait = max(1, math.ceil(taken.retry_after_s))
            raise RateLimitError(
                f"Rate limit of {int(limit.limit)} {limit.unit} per minute for {_who(limit, key_id, None)} "
                f"is reached; retry in {wait} s.", headers={"retry-after": str(wait)})
        return Hold(limit, scope, "window", amount, int(WINDOW_S), entry)

    def _change(self, hold: Hold, actual: int) -> None:
        if hold.entry is not None:
            self.counters.adjust_window(hold.scope, hold.entry, hold.amount, actual)
        else:
            self.counters.add(hold.scope, hold.period, actual - hold.amount, hold.ttl_s)

    def _amount(self, limit: Limit, model: str | None, tokens: tuple[int, int], request: dict[str, Any],
                key_id: str | None, session_id: str | None) -> int:
        if limit.unit == "requests":
            return 1
        if limit.unit == "tokens":
            return sum(tokens)
        price = self.prices.price(model)
        if price is None:
            raise BillingError(
                f"Model {model} has no price, so it cannot be used under the {_name(limit).lower()} "
                f"for {_who(limit, key_id, session_id)}: add it to PRICE_TABLE or set "
                "DEFAULT_PRICE_INPUT and DEFAULT_PRICE_OUTPUT.")
        cost = price.cost({"input_tokens": tokens[0], "output_tokens": tokens[1]})
        return max(1, math.ceil(cost * MICRO))


def estimate_hold_tokens(request: dict[str, Any], estimated: int | None = None) -> tuple[int, int]:
    """(prompt, output) tokens to hold: the routing estimate (capped), and ``max_tokens``."""
    prompt = min(estimate_tokens(request) if estimated is None else estimated, HOLD_CAP_INPUT_TOKENS)
    return prompt, int(request.get("max_tokens") or 0)


def _whole(limit: Limit) -> int:
    return round(limit.limit * MICRO) if limit.unit == "usd" else int(limit.limit)


def _period(period: str, now: datetime) -> str:
    return {"daily": now.strftime("%Y-%m-%d"), "monthly": now.strftime("%Y-%m"), "session": "all"}[period]


def _ttl(period: str) -> int:
    return {"daily": 2 * 86_400, "monthly": 32 * 86_400, "session": SESSION_TTL_S}[period]


def resets_at(period: str, now: datetime) -> datetime | None:
    """When the budget period holding ``now`` ends (None for a session: it never resets)."""
    if period == "daily":
        return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    if period == "monthly":
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return (first + timedelta(days=32)).replace(day=1)
    return None


def _name(limit: Limit) -> str:
    unit = {"tokens": "token", "usd": "USD", "requests": "request"}[limit.unit]
    return f"{ {'daily': 'Daily', 'monthly': 'Monthly', 'session': 'Session'}[limit.period]} {unit} budget"


def _who(limit: Limit, key_id: str | None, session_id: str | None) -> str:
    if limit.owner == "session":
        return f"session {session_id}"
    return f"key {key_id[:8]}…" if key_id else "clients without a key"


def _amount_text(unit: str, value: float) -> str:
    return f"${value / MICRO:.2f}" if unit == "usd" else f"{int(value)}"


def _refusal(limit: Limit, used: int, key_id: str | None, session_id: str | None, now: datetime) -> BillingError:
    who = _who(limit, key_id, session_id)
    reset = resets_at(limit.period, now)
    unit = "" if limit.unit == "usd" else " tokens"
    spent = f"({_amount_text(limit.unit, used)} of {_amount_text(limit.unit, _whole(limit))}{unit})"
    when = (f"it resets at {reset.strftime('%Y-%m-%dT%H:%M:%SZ')}" if reset
            else "it does not reset: start a new session")
    return BillingError(f"{_name(limit)} for {who} is spent {spent}; {when}")
