"""One request end to end: route → provider → response or stream, and what gets recorded.

The orchestrator is plain blocking code. It picks the provider for a request, calls it, and
fills in the :class:`~app.usage.RequestRecord` that is written (with new transcript turns) in
the background once the response has been sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from app.config import Config
from app.errors import LynkrError
from app.logging import get_logger
from app.providers.base import CallContext, Provider, Reply, UpstreamStream
from app.recorder import Recorder
from app.streams import StreamBuilder
from app.transcripts import record_exchange
from app.usage import Attempt, RequestRecord, usage_counts, write_record

log = get_logger("orchestrator")


class Orchestrator:
    """Routes requests to providers and records what happened."""

    def __init__(self, config: Config, providers: dict[str, Provider], recorder: Recorder) -> None:
        self.config = config
        self.providers = providers
        self.recorder = recorder

    def route(self, request: dict[str, Any]) -> tuple[Provider, str]:
        """The provider for ``request`` and why it was chosen."""
        return self.providers[self.config.model_provider], "static"

    def complete(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord) -> Reply:
        """A non-streaming answer."""
        provider, reason = self.route(request)
        record.provider, record.route_reason = provider.name, reason
        started = time.perf_counter()
        try:
            reply = provider.send(request, ctx)
        except LynkrError as exc:
            self._attempt(record, provider, ctx, started, status=exc.status, error_type=exc.error_type)
            raise
        record.model = reply.model
        record.usage = usage_counts(reply.message.get("usage"))
        self._attempt(record, provider, ctx, started, status=200, usage=record.usage, model=reply.model)
        return reply

    def opener(self, request: dict[str, Any], ctx: CallContext, record: RequestRecord) -> Callable[[], UpstreamStream]:
        """A function that opens the upstream stream (run on the stream's helper thread)."""
        provider, reason = self.route(request)
        record.provider, record.route_reason = provider.name, reason

        def open_stream() -> UpstreamStream:
            started = time.perf_counter()
            try:
                stream = provider.open_stream(request, ctx)
            except LynkrError as exc:
                self._attempt(record, provider, ctx, started, status=exc.status, error_type=exc.error_type)
                raise
            record.model = stream.model
            self._attempt(record, provider, ctx, started, status=200, model=stream.model)
            return stream

        return open_stream

    def finish(self, record: RequestRecord, request: dict[str, Any], message: dict[str, Any] | None,
               started: float) -> None:
        """Queue the usage row and new transcript turns for writing."""
        record.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        if message is not None and not record.usage:
            record.usage = usage_counts(message.get("usage"))
        if record.attempts and message is not None:
            record.attempts[-1].usage = record.usage
        store_turns = self.config.session_store_enabled and record.session_id
        messages = request.get("messages") or []

        def job() -> None:
            write_record(record)
            if store_turns:
                record_exchange(record.session_id, record.api_key, messages,
                                message if record.status == 200 else None)

        self.recorder.submit(job)

    def stream_done(self, record: RequestRecord, request: dict[str, Any],
                    started: float) -> Callable[[StreamBuilder, LynkrError | None], None]:
        """The callback a finished stream reports to."""

        def done(builder: StreamBuilder, failure: LynkrError | None) -> None:
            message = builder.accumulator.message or None
            if failure is not None:
                record.status, record.error_type = failure.status, failure.error_type
            elif not builder.grammar.stopped:
                record.status, record.error_type = 499 if not builder.grammar.errored else 502, "incomplete"
            else:
                record.status = 200
            self.finish(record, request, message, started)

        return done

    @staticmethod
    def _attempt(record: RequestRecord, provider: Provider, ctx: CallContext, started: float, *,
                 status: int, error_type: str | None = None, usage: dict[str, int] | None = None,
                 model: str | None = None) -> None:
        record.attempts.append(Attempt(
            provider=provider.name, model=model or provider.upstream_model(ctx.requested_model),
            status=status, error_type=error_type, route_reason=record.route_reason,
            usage=usage or {}, latency_ms=round((time.perf_counter() - started) * 1000, 2),
        ))
