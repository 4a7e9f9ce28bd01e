"""How a stream begins, over stub sources: the open on a helper, the first item, failures, letting go."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from app.errors import RateLimitError, UpstreamError
from app.logging import REQUEST_ID
from app.providers.wire import READING, SILENT
from app.sources import StreamSource, StreamStart, begin, on_helper, open_sources
from tests.fakes.sources import ScriptedSource

WAIT_S = 2.0  # an upper bound for a helper thread that should answer at once


@pytest.fixture(autouse=True)
def no_source_left_open() -> Iterator[None]:
    before = open_sources()
    yield
    assert open_sources() == before


def test_begin_returns_the_source_and_its_first_item_skipping_pauses() -> None:
    source = ScriptedSource([READING, {"n": 1}, {"n": 2}])

    start = begin(lambda: source, 1.0)

    assert (start.opening, start.stream, start.first) == (None, source, [{"n": 1}])
    assert start.items is not None
    assert list(start.items) == [{"n": 2}]
    assert 0 < source.paces[0] <= 1.0
    start.end()
    assert source.released == 1


def test_begin_returns_without_a_first_item_when_the_source_is_silent() -> None:
    source = ScriptedSource([SILENT, {"n": 1}])

    start = begin(lambda: source, 1.0)

    assert (start.stream, start.first) == (source, [])
    assert start.items is not None
    assert next(start.items) == {"n": 1}
    start.end()


def test_begin_raises_the_openers_error_with_its_status() -> None:
    refused = RateLimitError("slow down")

    def opener() -> StreamSource:
        raise refused

    with pytest.raises(RateLimitError) as caught:
        begin(opener, 1.0)
    assert caught.value is refused


def test_begin_raises_an_error_the_source_ends_with_and_lets_it_go() -> None:
    broken = UpstreamError("bad frame", provider="databricks")
    source = ScriptedSource([READING], fail_with=broken)

    with pytest.raises(UpstreamError) as caught:
        begin(lambda: source, 1.0)

    assert caught.value is broken
    assert source.released == 1


def test_begin_raises_upstream_error_when_the_source_ends_with_nothing() -> None:
    source = ScriptedSource([READING])

    with pytest.raises(UpstreamError, match="closed the stream without sending anything") as caught:
        begin(lambda: source, 1.0)

    assert caught.value.provider == "databricks"
    assert (source.read_to_end, source.released) == (True, 1)


def test_begin_returns_the_open_under_way_when_the_opener_is_slow() -> None:
    proceed = threading.Event()
    source = ScriptedSource([{"n": 1}])

    def opener() -> StreamSource:
        proceed.wait(WAIT_S)
        return source

    start = begin(opener, 0.05)

    assert start.opening is not None
    assert start.stream is None
    proceed.set()
    opened = start.opening.result(WAIT_S)
    assert list(start.opened(opened)) == [{"n": 1}]
    start.end()
    assert source.released == 1


def test_an_open_that_completes_after_the_client_left_is_closed_unread() -> None:
    proceed = threading.Event()
    source = ScriptedSource([{"n": 1}])

    def opener() -> StreamSource:
        proceed.wait(WAIT_S)
        return source

    start = begin(opener, 0.01)
    start.end()
    proceed.set()

    deadline = time.monotonic() + WAIT_S
    while source.released == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert (source.closed, source.released) == (1, 1)


def test_end_closes_the_items_and_releases_once() -> None:
    source = ScriptedSource([{"n": 1}, {"n": 2}])
    start = begin(lambda: source, 1.0)

    start.end()
    start.end()

    assert source.released == 1
    assert start.items is not None
    assert list(start.items) == []  # closed: nothing more is read


def test_the_count_of_open_sources_follows_begin_and_end() -> None:
    before = open_sources()
    start = begin(lambda: ScriptedSource([{"n": 1}]), 1.0)
    assert open_sources() == before + 1
    start.end()
    assert open_sources() == before


def test_a_helper_runs_under_the_callers_request_id() -> None:
    token = REQUEST_ID.set("req_helper")
    try:
        assert on_helper(REQUEST_ID.get).result(WAIT_S) == "req_helper"
    finally:
        REQUEST_ID.reset(token)


def test_stream_start_without_a_source_ends_quietly() -> None:
    StreamStart(None).end()


def test_after_open_runs_at_once_when_nothing_is_opening() -> None:
    ran: list[str] = []
    StreamStart(None).after_open(lambda: ran.append("settled"))
    assert ran == ["settled"]


def test_after_open_waits_for_an_open_under_way_and_keeps_the_request_id() -> None:
    opening: Future[StreamSource] = Future()
    start = StreamStart(opening)
    seen: list[str | None] = []
    token = REQUEST_ID.set("req_left")
    try:
        start.end()
        start.after_open(lambda: seen.append(REQUEST_ID.get()))
    finally:
        REQUEST_ID.reset(token)
    assert seen == []
    opening.set_result(ScriptedSource([]))
    assert seen == ["req_left"]
