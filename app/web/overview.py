"""What the dashboard's overview shows, read from what the gateway already keeps.

Totals, latency percentiles, routing, fallback and the prompt cache come from the same summary as
``/metrics/observability`` (so the two always agree); traffic over time, tokens and cost per
provider, model and key, and budget use per key come from the usage rows (``client_requests``),
which the recorder writes in the background a moment after each request ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import fn

from app.accounting.auth import key_id
from app.accounting.keys import list_keys
from app.config import Config
from app.storage.models import ClientRequest
from app.web.charts import Column

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
BUCKETS = 60
TOKEN_COLUMNS = (ClientRequest.input_tokens, ClientRequest.output_tokens,
                 ClientRequest.cache_read_input_tokens, ClientRequest.cache_creation_input_tokens)


@dataclass(frozen=True)
class UsageGroup:
    """Requests, tokens and cost of one (provider, model, key) in the window."""

    provider: str
    model: str
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class BudgetUse:
    """How much of one configured key budget a key has used in the current period."""

    key: str
    budget: str
    used: float
    limit: float
    unit: str

    @property
    def fraction(self) -> float:
        """Used over limit (may exceed 1 by what the crossing request used)."""
        return self.used / self.limit if self.limit else 0.0


def window_start(name: str, now: datetime) -> datetime:
    """The start of the named window (``1h``, ``24h``, ``7d``; anything else: ``24h``)."""
    return now - WINDOWS.get(name, WINDOWS["24h"])


def key_names(config: Config) -> dict[str, str]:
    """Display names by key id: stored keys by their name, configured keys by their variable."""
    names = {key_id(k): f"LYNKR_API_KEYS #{i}" for i, k in enumerate(config.api_keys, start=1)}
    names.update({key_id(k): f"LYNKR_ADMIN_KEYS #{i}" for i, k in enumerate(config.admin_keys, start=1)})
    names.update({row["key_id"]: row["name"] for row in list_keys()})
    return names


def traffic(since: datetime, until: datetime, buckets: int = BUCKETS) -> list[Column]:
    """Requests and errors (status ≥ 400 or none) per equal time bucket from ``since`` to ``until``."""
    width = (until - since) / buckets
    totals = [0] * buckets
    errors = [0] * buckets
    rows = ClientRequest.select(ClientRequest.created_at, ClientRequest.status).where(ClientRequest.created_at >= since)
    for created, status in rows_of(rows):
        index = int((_utc(created) - since) / width)
        if 0 <= index < buckets:
            totals[index] += 1
            errors[index] += status is None or status >= 400
    return [Column(since + width * i, totals[i], errors[i]) for i in range(buckets)]


def usage_groups(since: datetime, names: dict[str, str]) -> list[UsageGroup]:
    """Usage per provider, model and key since ``since``, the most expensive first."""
    query = (ClientRequest
             .select(ClientRequest.provider, ClientRequest.model, ClientRequest.api_key,
                     fn.COUNT(ClientRequest.request_id), fn.SUM(ClientRequest.input_tokens),
                     fn.SUM(ClientRequest.output_tokens), fn.SUM(ClientRequest.cost_usd))
             .where(ClientRequest.created_at >= since)
             .group_by(ClientRequest.provider, ClientRequest.model, ClientRequest.api_key))
    groups = [UsageGroup(provider or "—", model or "—", _key_label(key, names), int(count), int(inp or 0),
                         int(out or 0), float(cost or 0.0))
              for provider, model, key, count, inp, out, cost in rows_of(query)]
    return sorted(groups, key=lambda g: (-g.cost_usd, -g.requests, g.provider, g.model, g.key))


def totals_by(groups: Iterable[UsageGroup], field: str) -> list[tuple[str, float]]:
    """Cost summed per value of ``field`` (``provider``, ``model`` or ``key``), largest first."""
    sums: dict[str, float] = {}
    for group in groups:
        name = getattr(group, field)
        sums[name] = sums.get(name, 0.0) + group.cost_usd
    return sorted(sums.items(), key=lambda item: (-item[1], item[0]))


def tokens_by(groups: Iterable[UsageGroup], field: str) -> list[tuple[str, float]]:
    """Input plus output tokens summed per value of ``field``, largest first."""
    sums: dict[str, float] = {}
    for group in groups:
        name = getattr(group, field)
        sums[name] = sums.get(name, 0.0) + group.input_tokens + group.output_tokens
    return sorted(sums.items(), key=lambda item: (-item[1], item[0]))


def budget_use(config: Config, now: datetime, names: dict[str, str]) -> list[BudgetUse]:
    """Per key, each configured key budget (daily/monthly tokens and USD) against its use so far."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    budgets = [("Daily tokens", day, "tokens", config.budget_key_daily_tokens),
               ("Monthly tokens", month, "tokens", config.budget_key_monthly_tokens),
               ("Daily USD", day, "usd", config.budget_key_daily_usd),
               ("Monthly USD", month, "usd", config.budget_key_monthly_usd)]
    uses = []
    for budget, since, unit, limit in budgets:
        if limit <= 0:
            continue
        for key, used in _used_per_key(since, unit).items():
            uses.append(BudgetUse(_key_label(key, names), budget, used, float(limit), unit))
    return sorted(uses, key=lambda u: (-u.fraction, u.key, u.budget))


def _used_per_key(since: datetime, unit: str) -> dict[str | None, float]:
    # Budgets count all four token kinds, as Budgets.settle does.
    amount = fn.SUM(ClientRequest.cost_usd) if unit == "usd" else fn.SUM(sum(TOKEN_COLUMNS[1:], TOKEN_COLUMNS[0]))
    query = (ClientRequest.select(ClientRequest.api_key, amount)
             .where(ClientRequest.created_at >= since).group_by(ClientRequest.api_key))
    return {key: float(value or 0) for key, value in rows_of(query)}


def rows_of(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as tuples (peewee's query types do not say what they yield)."""
    return list(query.tuples())


def cache_hit_rate(summary: dict[str, Any]) -> float | None:
    """Prompt-cache hits over lookups, from the observability summary (None before any lookup)."""
    savings = summary["cost_savings"]
    lookups = savings["cache_hits"] + savings["cache_misses"]
    return savings["cache_hits"] / lookups if lookups else None


def _key_label(key: str | None, names: dict[str, str]) -> str:
    if key is None:
        return "(no key)"
    return names.get(key, key)


def _utc(value: datetime | str) -> datetime:
    # SQLite hands DateTimeField values back as naive datetimes (or strings) in UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
