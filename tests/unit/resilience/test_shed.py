"""Load shedding: each reason at its threshold, the memory reading cached, queue-time headers."""

from __future__ import annotations

import pytest

from app.resilience.retry import LoadShedder, queued_ms_from_header
from tests.fakes.clock import FakeClock


def make_shedder(ratio: float | None = 0.1, **thresholds: float) -> LoadShedder:
    return LoadShedder(**thresholds, memory_reader=lambda: ratio, clock=FakeClock())  # type: ignore[arg-type]


def test_memory_sheds_at_its_threshold() -> None:
    assert make_shedder(0.85, memory_threshold=0.85).check(0, None) == "memory"
    assert make_shedder(0.849, memory_threshold=0.85).check(0, None) is None
    assert make_shedder(None, memory_threshold=0.85).check(0, None) is None  # no cgroup limit


def test_queue_time_sheds_at_its_threshold() -> None:
    shedder = make_shedder(max_queue_ms=500)
    assert shedder.check(0, 500.0) == "queue_time"
    assert shedder.check(0, 499.9) is None
    assert shedder.check(0, None) is None


def test_active_requests_shed_at_their_threshold() -> None:
    shedder = make_shedder(active_requests_threshold=10)
    assert shedder.check(10, None) == "active_requests"
    assert shedder.check(9, None) is None


def test_streams_shed_at_their_threshold() -> None:
    shedder = make_shedder(max_in_flight_streams=4)
    assert shedder.check(0, None, in_flight_streams=4) == "streams"
    assert shedder.check(9, None, in_flight_streams=3) is None
    assert shedder.check(9, None) is None  # requests in flight are not streams


@pytest.mark.parametrize("off", [None, 0])
def test_thresholds_of_none_or_zero_are_off(off: float | None) -> None:
    shedder = LoadShedder(off, off, off, off, memory_reader=lambda: 1.0)  # type: ignore[arg-type]
    assert shedder.check(10**6, 10.0**9) is None


def test_memory_is_read_at_most_once_per_cache_period() -> None:
    clock, reads = FakeClock(), []

    def reader() -> float:
        reads.append(clock.now)
        return 0.5

    shedder = LoadShedder(memory_threshold=0.9, cache_s=1.0, clock=clock, memory_reader=reader)
    for _ in range(5):
        shedder.check(0, None)
        clock.advance(0.19)
    assert len(reads) == 1
    clock.advance(0.05)
    shedder.check(0, None)
    assert len(reads) == 2


def test_memory_is_not_read_when_its_threshold_is_off() -> None:
    reads: list[int] = []
    LoadShedder(memory_reader=lambda: reads.append(1) or 0.0).check(0, None)  # type: ignore[func-returns-value]
    assert reads == []


NOW = 1_700_000_000.623


@pytest.mark.parametrize(("value", "queued_ms"), [
    ("t=1700000000.123", 500.0),
    ("1700000000.123", 500.0),
    (" t=1700000000123 ", 500.0),
    ("1700000000123000", 500.0),
    ("t=1700000001.000", 0.0),
])
def test_queued_ms_from_header(value: str, queued_ms: float) -> None:
    assert queued_ms_from_header(value, NOW) == pytest.approx(queued_ms, abs=0.01)


@pytest.mark.parametrize("value", ["", "t=", "soon", "t=nan", "t=inf", "-5", "0", "1700000000123000000"])
def test_unreadable_queue_headers_give_none(value: str) -> None:
    assert queued_ms_from_header(value, NOW) is None
