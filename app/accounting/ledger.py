"""The ledger: what an ended exchange spent, settled and queued for writing, once.

Given an exchange's record, the ledger settles its budget holds to the real usage (nothing for a
failure or a prompt-cache hit; what was used for a client that went away), prices every attempt
and the whole (and what routing or the cache saved), counts tokens and cost in the metrics, and
queues the usage row and the session's new transcript turns for the background writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.accounting.budgets import Budgets
from app.accounting.pricing import PriceTable
from app.accounting.usage import RequestRecord, usage_counts, write_record
from app.anthropic.encoded import Encoded
from app.config import Config
from app.metrics.recorder import MetricsRecorder
from app.providers.base import Provider
from app.storage.recorder import Recorder
from app.storage.transcripts import record_exchange

CLIENT_GONE = 499  # the status recorded for a stream whose client went away


@dataclass(eq=False)
class Ledger:
    """Enters ended exchanges: budget holds settled, cost priced, usage row and turns queued."""

    config: Config
    providers: dict[str, Provider]
    recorder: Recorder
    prices: PriceTable
    budgets: Budgets | None
    metrics: MetricsRecorder

    def enter(self, record: RequestRecord, request: dict[str, Any], message: dict[str, Any] | None,
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
