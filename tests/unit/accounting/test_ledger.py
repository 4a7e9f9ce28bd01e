"""The ledger over a held writer, recording budgets and metrics: what each ending settles, prices
and queues."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from app.accounting.ledger import CLIENT_GONE, Ledger
from app.accounting.pricing import PriceTable
from app.accounting.usage import RequestRecord
from app.config import Config
from app.metrics.recorder import NullMetrics
from app.providers import build_providers
from app.providers.capabilities import CapabilityTable
from app.storage.recorder import Job, Recorder

MODEL = "databricks-claude-sonnet-4-5"
USAGE = {"input_tokens": 1_000_000, "output_tokens": 0, "cache_creation_input_tokens": 0,
         "cache_read_input_tokens": 0}


class HeldRecorder(Recorder):
    """Keeps the write jobs instead of running them."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[tuple[Job, int]] = []

    def submit(self, job: Job, holds_bytes: int = 0) -> None:
        self.jobs.append((job, holds_bytes))


class HeldBudgets:
    """Records how each hold is settled."""

    def __init__(self) -> None:
        self.settled: list[tuple[Any, str | None, dict[str, int]]] = []

    def settle(self, admission: Any, model: str | None, usage: dict[str, int]) -> None:
        self.settled.append((admission, model, usage))


class CountingMetrics(NullMetrics):
    """Records the cost and savings the ledger counts."""

    def __init__(self) -> None:
        self.costs: list[tuple[str, str | None, float]] = []
        self.savings: list[tuple[str, float]] = []

    def add_cost(self, provider: str, model: str | None, usd: float) -> None:
        self.costs.append((provider, model, usd))

    def add_cost_savings(self, provider: str, usd: float) -> None:
        self.savings.append((provider, usd))

    def tokens(self, provider: str, model: str | None, usage: Mapping[str, Any] | None) -> None:
        """Not looked at here."""


class Books:
    """A ledger and what it talks to."""

    def __init__(self, config: Config) -> None:
        self.recorder, self.budgets, self.metrics = HeldRecorder(), HeldBudgets(), CountingMetrics()
        self.ledger = Ledger(config, build_providers(config, CapabilityTable()), self.recorder, PriceTable(),
                             self.budgets, self.metrics)


@pytest.fixture
def books(make_config: Callable[..., Config]) -> Books:
    return Books(make_config())


def ended(status: int, route_reason: str = "static", **fields: Any) -> RequestRecord:
    return RequestRecord(request_id="req_ledger", path="/v1/messages", provider="databricks", model=MODEL,
                         status=status, route_reason=route_reason, usage=dict(USAGE), admission="hold",
                         model_requested="claude-sonnet-4-5", **fields)


@pytest.mark.parametrize(("status", "route_reason", "spent"), [
    (200, "static", USAGE),
    (CLIENT_GONE, "static", USAGE),  # a client that went away had the tokens spent for it
    (502, "static", {}),  # a failure gave the client nothing
    (200, "prompt_cache", {}),  # a hit called no upstream
])
def test_each_ending_settles_its_hold_once_and_queues_one_row(books: Books, status: int, route_reason: str,
                                                              spent: dict[str, int]) -> None:
    record = ended(status, route_reason)

    books.ledger.enter(record, {"messages": []}, None, time.perf_counter())

    assert books.budgets.settled == [("hold", MODEL, spent)]
    assert record.admission is None
    assert len(books.recorder.jobs) == 1
    assert record.duration_ms is not None


def test_a_priced_answer_is_costed_and_counted(books: Books) -> None:
    record = ended(200)

    books.ledger.enter(record, {"messages": []}, None, time.perf_counter())

    assert record.cost_usd == 3.0  # a million input tokens of a Sonnet 4 model
    assert books.metrics.costs == [("databricks", MODEL, 3.0)]


def test_a_cache_hit_costs_nothing_and_counts_what_it_saved(books: Books) -> None:
    record = ended(200, "prompt_cache")
    record.usage = {**USAGE, "input_tokens": 0, "cache_read_input_tokens": 1_000_000}

    books.ledger.enter(record, {"messages": []}, None, time.perf_counter())

    assert record.cost_usd == 0.0
    assert books.metrics.costs == []
    assert books.metrics.savings == [("databricks", 3.0)]


def test_usage_comes_from_the_message_when_the_record_has_none(books: Books) -> None:
    record = ended(200)
    record.usage = {}
    message = {"usage": {"input_tokens": 7, "output_tokens": 3}}

    books.ledger.enter(record, {"messages": []}, message, time.perf_counter())

    assert (record.usage["input_tokens"], record.usage["output_tokens"]) == (7, 3)


def test_a_job_holds_the_body_only_when_it_stores_turns(make_config: Callable[..., Config]) -> None:
    with_turns = Books(make_config(session_store_enabled=True))
    without = Books(make_config(session_store_enabled=False))

    for books in (with_turns, without):
        books.ledger.enter(ended(200, session_id="sess_1", body_bytes=4096), {"messages": []}, None,
                           time.perf_counter())

    assert [held for _, held in with_turns.recorder.jobs] == [4096]
    assert [held for _, held in without.recorder.jobs] == [0]
