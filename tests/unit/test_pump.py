"""The stream pump over a stub source: items in order then END, errors as ERROR, close, begin."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.anthropic.events import StreamBuilder
from app.errors import ConnectionBrokenError, LynkrError, RateLimitError, UpstreamError
from app.pump import END, ERROR, ITEM, OPEN, StreamPump, StreamSource, begin, running_readers

WAIT_S = 2.0  # an upper bound for a helper thread that should answer at once


class StubSource:
    """A stream source whose items come from a list, or block until closed."""

    provider = "databricks"
    model = "databricks-claude-sonnet-4-5"
    headers: dict[str, str] = {}

    def __init__(self, items: list[Any], *, fail_with: LynkrError | None = None, block: bool = False) -> None:
        self._items = items
        self._fail_with = fail_with
        self._block = block
        self.closed = threading.Event()
        self.released = threading.Event()
        self.reading = threading.Event()

    @property
    def items(self) -> Iterator[Any]:
        return self._read()

    def _read(self) -> Iterator[Any]:
        yield from self._items
        if self._block:
            self.reading.set()
            self.closed.wait(WAIT_S)
            raise ConnectionBrokenError("The socket was shut down.")
        if self._fail_with is not None:
            raise self._fail_with

    @property
    def translator(self) -> Callable[[StreamBuilder], Any]:
        raise AssertionError("the pump never translates")

    def close(self) -> None:
        self.closed.set()

    def release(self) -> None:
        self.released.set()


def drain(pump: StreamPump) -> list[tuple[str, Any]]:
    """Every queued ``(kind, value)`` up to and including END or ERROR."""
    got: list[tuple[str, Any]] = []
    while True:
        item = pump.get(WAIT_S)
        assert item is not None, f"the pump went silent after {got}"
        got.append(item)
        if item[0] in (END, ERROR):
            return got


def opener(source: StubSource) -> Callable[[], StreamSource]:
    return lambda: source


def settled_readers(target: int) -> int:
    """The running reader count once it has fallen to ``target`` (or after ``WAIT_S``)."""
    deadline = time.monotonic() + WAIT_S
    while running_readers() > target and time.monotonic() < deadline:
        time.sleep(0.001)
    return running_readers()


@pytest.fixture(autouse=True)
def readers_before() -> Iterator[int]:
    """The readers running before the test (another module's stream may still be ending); every
    test leaves that many."""
    before = settled_readers(0)
    yield before
    assert settled_readers(before) == before


def test_items_arrive_in_order_after_open_then_end() -> None:
    source = StubSource([{"n": 1}, {"n": 2}, {"n": 3}, "[DONE]"])
    pump = StreamPump(opener(source)).start()

    assert drain(pump) == [(OPEN, source), (ITEM, {"n": 1}), (ITEM, {"n": 2}), (ITEM, {"n": 3}),
                           (ITEM, "[DONE]"), (END, None)]
    assert pump.finished.wait(WAIT_S)
    assert source.released.is_set()
    assert pump.poll() is None


def test_a_lynkr_error_from_the_items_becomes_error() -> None:
    failure = ConnectionBrokenError("The upstream reset the connection.", provider="databricks")
    source = StubSource([{"n": 1}], fail_with=failure)
    pump = StreamPump(opener(source)).start()

    assert drain(pump) == [(OPEN, source), (ITEM, {"n": 1}), (ERROR, failure)]
    assert pump.finished.wait(WAIT_S)
    assert source.released.is_set()


def test_a_bug_in_the_source_becomes_an_internal_error() -> None:
    def broken() -> StreamSource:
        raise RuntimeError("a bug")

    pump = StreamPump(broken).start()

    kind, value = drain(pump)[-1]
    assert kind == ERROR
    assert type(value) is LynkrError
    assert (value.status, value.message) == (500, "Internal server error")


def test_close_stops_the_reader_and_closes_the_source(readers_before: int) -> None:
    source = StubSource([{"n": 1}], block=True)
    pump = StreamPump(opener(source)).start()
    assert source.reading.wait(WAIT_S)
    assert running_readers() == readers_before + 1

    pump.close()

    assert source.closed.is_set()
    assert pump.finished.wait(WAIT_S)
    assert source.released.is_set()
    assert settled_readers(readers_before) == readers_before
    # The broken read after close is no news for anyone: no ERROR is queued.
    assert [pump.poll(), pump.poll(), pump.poll()] == [(OPEN, source), (ITEM, {"n": 1}), None]


def test_close_before_the_source_opens_closes_it_as_soon_as_it_does() -> None:
    source = StubSource([{"n": 1}])
    may_open = threading.Event()

    def slow_open() -> StreamSource:
        may_open.wait(WAIT_S)
        return source

    pump = StreamPump(slow_open).start()
    pump.close()
    may_open.set()

    assert pump.finished.wait(WAIT_S)
    assert source.closed.is_set()
    assert source.released.is_set()
    assert pump.poll() is None


def test_get_returns_none_after_silence() -> None:
    source = StubSource([], block=True)
    pump = StreamPump(opener(source)).start()
    assert pump.get(WAIT_S) == (OPEN, source)

    started = time.monotonic()
    assert pump.get(0.01) is None
    assert time.monotonic() - started >= 0.01
    pump.close()
    assert pump.finished.wait(WAIT_S)


def test_begin_raises_the_openers_error_before_the_deadline() -> None:
    refused = RateLimitError("Slow down.", headers={"retry-after": "3"}, provider="databricks")

    def opener_fails() -> StreamSource:
        raise refused

    with pytest.raises(RateLimitError) as caught:
        begin(opener_fails, commit_after_s=WAIT_S)

    assert caught.value is refused


def test_begin_raises_upstream_error_when_the_source_ends_with_nothing() -> None:
    with pytest.raises(UpstreamError) as caught:
        begin(opener(StubSource([])), commit_after_s=WAIT_S)

    assert type(caught.value) is UpstreamError
    assert caught.value.provider == "databricks"
    assert caught.value.message == "The upstream closed the stream without sending anything."


def test_begin_returns_the_source_and_its_first_item() -> None:
    source = StubSource([{"n": 1}, {"n": 2}])

    start = begin(opener(source), commit_after_s=WAIT_S)

    assert start.stream is source
    assert start.first == (ITEM, {"n": 1})
    assert drain(start.pump) == [(ITEM, {"n": 2}), (END, None)]


def test_begin_returns_without_a_first_item_when_the_source_is_silent() -> None:
    source = StubSource([], block=True)

    start = begin(opener(source), commit_after_s=0.02)

    assert start.stream is source
    assert start.first is None
    start.pump.close()
    assert start.pump.finished.wait(WAIT_S)


def test_begin_returns_nothing_yet_when_the_opener_is_still_connecting() -> None:
    may_open = threading.Event()
    source = StubSource([{"n": 1}])

    def slow_open() -> StreamSource:
        may_open.wait(WAIT_S)
        return source

    start = begin(slow_open, commit_after_s=0.01)

    assert (start.stream, start.first) == (None, None)
    may_open.set()
    assert drain(start.pump) == [(OPEN, source), (ITEM, {"n": 1}), (END, None)]
