"""The streaming response over scripted sources: event order, batching, keepalives, pings,
failures, draining and cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import orjson
import pytest

from app import logging as lynkr_logging
from app.anthropic.events import StreamBuilder
from app.errors import ConnectionBrokenError, LynkrError, UpstreamError
from app.logging import REDACTED, Redactor
from app.providers.wire import READING, SILENT
from app.sources import StreamSource, StreamStart
from app.web.streaming import DRAIN_READS, DRAIN_S, PRE_START_COMMENT_INTERVAL_S, StreamBody, generate
from tests.fakes.anthropic_events import block_stop, message_end, message_start, text_delta, text_start
from tests.fakes.sources import ScriptedSource

PING_S = 10.0


class Done:
    """Records each ``on_done`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[StreamBuilder, LynkrError | None]] = []

    def __call__(self, builder: StreamBuilder, failure: LynkrError | None) -> None:
        self.calls.append((builder, failure))


def started(source: ScriptedSource, first: list[Any] | None = None) -> StreamStart:
    start = StreamStart(None)
    start.opened(source)
    start.first = first or []
    return start


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
    source = ScriptedSource([SILENT, *TEXT, READING, SILENT, SILENT, *REST])
    done = Done()
    client = builder()

    chunks = list(generate(started(source), client, PING_S, done))

    assert [frames(c) for c in chunks] == [
        [":keepalive"],
        ["message_start", "content_block_start", "content_block_delta"],
        ["ping"],
        ["content_block_delta", "content_block_stop", "message_delta", "message_stop"],
    ]
    assert source.paces == [PRE_START_COMMENT_INTERVAL_S, DRAIN_S]
    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert client.accumulator.message["content"] == [{"type": "text", "text": "Hello"}]
    assert (source.read_to_end, source.released) == (True, 1)


def test_items_read_together_go_out_in_one_write() -> None:
    source = ScriptedSource([message_start(), READING, text_start(), text_delta("a"), text_delta("b"), READING,
                             block_stop(), *message_end()])

    chunks = list(generate(started(source), builder(), PING_S, Done()))

    assert [frames(c) for c in chunks] == [
        ["message_start"],
        ["content_block_start", "content_block_delta", "content_block_delta"],
        ["content_block_stop", "message_delta", "message_stop"],
    ]


def test_a_source_not_yet_open_gets_a_comment_at_once_then_opens() -> None:
    source = ScriptedSource([*TEXT, *REST])
    opening: Future[StreamSource] = Future()
    opening.set_result(source)
    done = Done()

    chunks = list(generate(StreamStart(opening), builder(), PING_S, done))

    assert [frames(c) for c in chunks] == [
        [":keepalive"],
        ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
         "content_block_stop", "message_delta", "message_stop"],
    ]
    assert [f for _, f in done.calls] == [None]
    assert source.released == 1


def test_an_open_that_fails_after_the_commit_becomes_an_error_event() -> None:
    refused = UpstreamError("The upstream is overloaded.", status=529, error_type="overloaded_error")
    opening: Future[StreamSource] = Future()
    opening.set_exception(refused)
    done = Done()

    chunks = list(generate(StreamStart(opening), builder(), PING_S, done))

    assert frames(chunks[0]) == [":keepalive"]
    assert last_event(chunks[-1]) == {"type": "error", "error": {"type": "overloaded_error",
                                                                 "message": "The upstream is overloaded."}}
    assert [f for _, f in done.calls] == [refused]


def test_the_first_item_begin_saw_goes_out_first() -> None:
    source = ScriptedSource([READING, *TEXT[1:], *REST])

    chunks = list(generate(started(source, [TEXT[0]]), builder(), PING_S, Done()))

    assert [frames(c) for c in chunks] == [
        ["message_start"],
        ["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
         "message_delta", "message_stop"],
    ]


def test_an_error_mid_stream_becomes_an_error_event_and_is_reported() -> None:
    broken = ConnectionBrokenError("The upstream reset the connection.", provider="databricks")
    source = ScriptedSource([*TEXT, READING], fail_with=broken)
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

    assert frames(chunks[-1]) == ["error"]
    assert last_event(chunks[-1]) == {"type": "error", "error": {"type": "api_error",
                                                                 "message": "The upstream reset the connection."}}
    assert [f for _, f in done.calls] == [broken]
    assert source.released == 1


def test_an_end_without_message_stop_reports_connection_broken() -> None:
    source = ScriptedSource([*TEXT])
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

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
    source = ScriptedSource([*TEXT, frame, READING, text_delta("never read")])
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

    body = b"".join(chunks)
    assert secret.encode() not in body
    assert b"never read" not in body
    assert last_event(chunks[-1]) == {"type": "error", "error": {"type": "overloaded_error",
                                                                 "message": f"token {REDACTED} is overloaded"}}
    [(_, failure)] = done.calls
    assert type(failure) is UpstreamError
    assert (failure.status, failure.error_type, failure.message) == (
        529, "overloaded_error", f"token {REDACTED} is overloaded")


def test_a_malformed_item_ends_the_stream_as_an_upstream_error() -> None:
    source = ScriptedSource([*TEXT, block_stop(index=5)])
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

    error = last_event(chunks[-1])
    assert error["error"]["type"] == "api_error"
    assert error["error"]["message"].startswith("The upstream stream was malformed: ")
    [(_, failure)] = done.calls
    assert type(failure) is UpstreamError
    assert failure.message == error["error"]["message"]


def test_after_the_message_the_rest_of_the_body_is_drained_until_a_silence() -> None:
    source = ScriptedSource([*TEXT, *REST, READING, "[DONE]", READING, SILENT, "never read"])
    done = Done()

    list(generate(started(source), builder(), PING_S, done))

    assert source.read == len(TEXT) + len(REST) + 4
    assert source.paces[-1] == DRAIN_S
    assert [f for _, f in done.calls] == [None]


def test_a_failure_while_draining_does_not_fail_a_whole_message() -> None:
    broken = ConnectionBrokenError("reset after the end", provider="databricks")
    source = ScriptedSource([*TEXT, *REST, READING], fail_with=broken)
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

    assert frames(chunks[-1])[-1] == "message_stop"
    assert [f for _, f in done.calls] == [None]


def test_closing_the_body_before_it_started_lets_the_source_go_and_reports_once() -> None:
    source = ScriptedSource([*TEXT])
    done = Done()
    client = builder()

    body = generate(started(source), client, PING_S, done)
    assert isinstance(body, StreamBody)
    body.close()
    body.close()

    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert (source.read, source.released) == (0, 1)


@pytest.mark.parametrize("started_first", [False, True])
def test_a_client_gone_while_the_source_opens_is_reported_once_the_open_completes(started_first: bool) -> None:
    opening: Future[StreamSource] = Future()
    source = ScriptedSource([*TEXT, *REST])
    done = Done()

    body = generate(StreamStart(opening), builder(), PING_S, done)
    if started_first:
        assert next(iter(body)) == b": keepalive\n\n"
    body.close()
    assert done.calls == []  # the open may still record attempts (retries, fallback)
    opening.set_result(source)

    assert [f for _, f in done.calls] == [None]
    assert (source.read, source.closed, source.released) == (0, 1, 1)


def test_a_client_gone_mid_stream_reports_once_with_no_failure() -> None:
    source = ScriptedSource([*TEXT, READING, SILENT, *REST])
    done = Done()
    client = builder()

    body = generate(started(source), client, PING_S, done)
    chunks = iter(body)
    assert frames(next(chunks)) == ["message_start", "content_block_start", "content_block_delta"]
    body.close()

    assert [(b, f) for b, f in done.calls] == [(client, None)]
    assert client.finished is False
    assert (source.read_to_end, source.released) == (False, 1)


def test_items_read_before_a_failure_go_out_before_its_error_event() -> None:
    broken = UpstreamError("The upstream sent a stream event that is not valid JSON.")
    source = ScriptedSource([message_start()], fail_with=broken)  # the bad event was in the same read
    done = Done()

    chunks = list(generate(started(source), builder(), PING_S, done))

    assert [frames(c) for c in chunks] == [["message_start", "error"]]
    assert [f for _, f in done.calls] == [broken]


class Clock:
    """A clock the script moves: each call gives the next reading."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


@pytest.mark.parametrize("silence", [
    [READING, READING, READING],  # a tool call's input being written: bytes that make no item
    [READING, message_start(), READING, message_start(), READING],  # items that make no event (held, repeated)
], ids=["bytes", "items"])
def test_what_makes_no_event_still_gets_pings_when_the_client_hears_nothing(silence: list[Any]) -> None:
    source = ScriptedSource([*TEXT, *silence, *REST])
    clock = Clock(0.0, 0.0, 1.0, 11.0, 11.0)

    chunks = list(generate(started(source), builder(), PING_S, Done(), clock))

    assert [frames(c) for c in chunks] == [
        ["message_start", "content_block_start", "content_block_delta"],
        ["ping"],
        ["content_block_delta", "content_block_stop", "message_delta", "message_stop"],
    ]


def test_a_bug_in_the_source_ends_the_stream_with_an_internal_error_event() -> None:
    class Broken(ScriptedSource):
        def _read(self) -> Iterator[Any]:
            yield message_start()
            raise RuntimeError("a bug")

    done = Done()

    chunks = list(generate(started(Broken([])), builder(), PING_S, done))

    assert [frames(c) for c in chunks] == [["message_start", "error"]]
    assert last_event(chunks[-1])["error"] == {"type": "api_error", "message": "Internal server error"}
    [(_, failure)] = done.calls
    assert failure is not None
    assert failure.message == "Internal server error"


def test_the_drain_stops_after_its_reads_even_while_bytes_keep_coming() -> None:
    source = ScriptedSource([*TEXT, *REST, *[READING] * (DRAIN_READS + 3)])

    list(generate(started(source), builder(), PING_S, Done()))

    assert source.read == len(TEXT) + len(REST) + DRAIN_READS + 1
    assert source.released == 1


def test_a_release_that_fails_still_reports_the_stream() -> None:
    class Sticky(ScriptedSource):
        def release(self) -> None:
            raise OSError("close failed")

    done = Done()

    with pytest.raises(OSError, match="close failed"):
        list(generate(started(Sticky([*TEXT, *REST])), builder(), PING_S, done))

    assert [f for _, f in done.calls] == [None]
