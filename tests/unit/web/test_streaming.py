"""The streaming response over a scripted pump: event order, keepalives, pings, failures, cleanup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
import pytest

from app import logging as lynkr_logging
from app.anthropic.events import StreamBuilder
from app.errors import ConnectionBrokenError, LynkrError, UpstreamError
from app.logging import REDACTED, Redactor
from app.providers.formats.anthropic import StreamTranslator
from app.pump import END, ERROR, ITEM, OPEN, StreamPump, StreamStart
from app.web.streaming import PRE_START_COMMENT_INTERVAL_S, StreamBody, generate
from tests.fakes.anthropic_events import block_stop, message_end, message_start, text_delta, text_start

PING_S = 10.0
Queued = tuple[str, Any]


class StubSource:
    """An opened upstream stream whose items are relayed by the Anthropic translator."""

    provider = "databricks"
    model = "databricks-claude-sonnet-4-5"
    headers: dict[str, str] = {}
    items: Iterator[Any] = iter(())

    @property
    def translator(self) -> Callable[[StreamBuilder], Any]:
        return StreamTranslator

    def close(self) -> None:
        """Nothing to wake."""

    def release(self) -> None:
        """Nothing held."""


class ScriptedPump:
    """A pump whose queue is scripted as bursts: ``get`` takes a burst's first item (None is a
    silence), ``poll`` the rest of the burst."""

    def __init__(self, bursts: list[list[Queued] | None]) -> None:
        self._bursts = list(bursts)
        self._burst: list[Queued] = []
        self.waits: list[float] = []
        self.closed = 0

    def get(self, timeout: float) -> Queued | None:
        self.waits.append(timeout)
        assert self._bursts, "the generator waited past the end of the script"
        burst = self._bursts.pop(0)
        if burst is None:
            return None
        self._burst = list(burst[1:])
        return burst[0]

    def poll(self) -> Queued | None:
        return self._burst.pop(0) if self._burst else None

    def close(self) -> None:
        self.closed += 1


class Done:
    """Records each ``on_done`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[StreamBuilder, LynkrError | None]] = []

    def __call__(self, builder: StreamBuilder, failure: LynkrError | None) -> None:
        self.calls.append((builder, failure))


def items(*events: dict[str, Any]) -> list[Queued]:
    return [(ITEM, event) for event in events]


def started(pump: ScriptedPump, *, stream: StubSource | None = None, first: Queued | None = None) -> StreamStart:
    return StreamStart(cast(StreamPump, pump), stream, first)


def builder() -> StreamBuilder:
    return StreamBuilder(message_id="msg_lynkr_1", model="claude-sonnet-4-5")


def frames(chunk: bytes) -> list[str]:
    """What one written chunk holds: ``:comment`` for a comment, else each event's type."""
    shown = []
    for frame in chunk.decode().split("\n\n")[:-1]:
        if frame.startswith(": "):
            shown.append(":" + frame[2:])
        else:
            shown.append(orjson.loads(frame.split("\ndata: ", 1)[1])["type"])
    return shown


def last_event(chunk: bytes) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(chunk.decode().split("\n\n")[-2].split("\ndata: ", 1)[1])
    return result


TEXT = [message_start(), text_start(), text_delta("Hel")]
REST = [text_delta("lo"), block_stop(), *message_end()]


def test_keepalive_before_message_start_then_events_then_pings() -> None:
    pump = ScriptedPump([None, items(*TEXT), None, items(*REST)])
    done = Done()
    client = builder()

    chunks = list(generate(started(pump, stream=StubSource()), client, PING_S, done))

    assert [frames(c) for c in chunks] == [
        [":keepalive"],
        ["message_start", "content_block_start", "content_block_delta"],
        ["ping"],
        ["content_block_delta", "content_block_stop", "message_delta", "message_stop"],
    ]
    assert pump.waits == [PRE_START_COMMENT_INTERVAL_S, PRE_START_COMMENT_INTERVAL_S, PING_S, PING_S]
    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert client.accumulator.message["content"] == [{"type": "text", "text": "Hello"}]
    assert pump.closed == 1


def test_a_source_not_yet_open_gets_a_comment_at_once_then_opens_from_the_queue() -> None:
    source = StubSource()
    pump = ScriptedPump([[(OPEN, source), *items(*TEXT, *REST)]])
    done = Done()

    chunks = list(generate(started(pump), builder(), PING_S, done))

    assert [frames(c) for c in chunks] == [
        [":keepalive"],
        ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
         "content_block_stop", "message_delta", "message_stop"],
    ]
    assert [f for _, f in done.calls] == [None]


def test_the_first_item_begin_saw_goes_out_first() -> None:
    pump = ScriptedPump([items(*TEXT[1:], *REST)])
    done = Done()

    chunks = list(generate(started(pump, stream=StubSource(), first=(ITEM, TEXT[0])), builder(), PING_S, done))

    assert [frames(c) for c in chunks] == [
        ["message_start"],
        ["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
         "message_delta", "message_stop"],
    ]


def test_an_error_mid_stream_becomes_an_error_event_and_is_reported() -> None:
    broken = ConnectionBrokenError("The upstream reset the connection.", provider="databricks")
    pump = ScriptedPump([[*items(*TEXT), (ERROR, broken)]])
    done = Done()

    chunks = list(generate(started(pump, stream=StubSource()), builder(), PING_S, done))

    assert frames(chunks[-1])[-1] == "error"
    assert last_event(chunks[-1]) == {"type": "error", "error": {"type": "api_error",
                                                                 "message": "The upstream reset the connection."}}
    assert [f for _, f in done.calls] == [broken]
    assert pump.closed == 1


def test_an_end_without_message_stop_reports_connection_broken() -> None:
    pump = ScriptedPump([[*items(*TEXT), (END, None)]])
    done = Done()

    chunks = list(generate(started(pump, stream=StubSource()), builder(), PING_S, done))

    assert frames(chunks[-1]) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert last_event(chunks[-1]) == {"type": "error", "error": {
        "type": "api_error", "message": "The upstream stream ended before the message was complete."}}
    [(_, failure)] = done.calls
    assert type(failure) is ConnectionBrokenError
    assert failure.message == "The upstream stream ended before the message was complete."


def test_an_upstream_error_frame_is_masked_and_reported_as_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "dapi-upstream-secret-0123456789"
    monkeypatch.setattr(lynkr_logging, "_CLIENT_REDACTOR", Redactor([secret]))
    frame = {"type": "error", "error": {"type": "overloaded_error", "message": f"token {secret} is overloaded"}}
    pump = ScriptedPump([[*items(*TEXT, frame)]])
    done = Done()

    chunks = list(generate(started(pump, stream=StubSource()), builder(), PING_S, done))

    body = b"".join(chunks)
    assert secret.encode() not in body
    assert last_event(chunks[-1]) == {"type": "error", "error": {"type": "overloaded_error",
                                                                 "message": f"token {REDACTED} is overloaded"}}
    [(_, failure)] = done.calls
    assert type(failure) is UpstreamError
    assert (failure.status, failure.error_type, failure.message) == (
        529, "overloaded_error", f"token {REDACTED} is overloaded")


def test_a_malformed_item_ends_the_stream_as_an_upstream_error() -> None:
    pump = ScriptedPump([[*items(*TEXT, block_stop(index=5))]])
    done = Done()

    chunks = list(generate(started(pump, stream=StubSource()), builder(), PING_S, done))

    error = last_event(chunks[-1])
    assert error["error"]["type"] == "api_error"
    assert error["error"]["message"].startswith("The upstream stream was malformed: ")
    [(_, failure)] = done.calls
    assert type(failure) is UpstreamError
    assert failure.message == error["error"]["message"]


def test_closing_the_body_before_it_started_stops_the_reader_and_reports_once() -> None:
    pump = ScriptedPump([])
    done = Done()
    client = builder()

    body = generate(started(pump, stream=StubSource()), client, PING_S, done)
    assert isinstance(body, StreamBody)
    body.close()
    body.close()

    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert pump.closed == 1


def test_a_client_gone_mid_stream_reports_once_with_no_failure() -> None:
    pump = ScriptedPump([items(*TEXT), None])
    done = Done()
    client = builder()

    body = generate(started(pump, stream=StubSource()), client, PING_S, done)
    chunks = iter(body)
    assert frames(next(chunks)) == ["message_start", "content_block_start", "content_block_delta"]
    body.close()

    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert client.finished is False
    assert pump.closed == 1
