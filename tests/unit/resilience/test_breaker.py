"""Circuit breakers: thresholds, recovery, one probe at a time, state shared across fork."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from app.resilience.retry import (
    BreakerConfig,
    BreakerRecord,
    BreakerRegistry,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    InProcessStore,
    SharedMemoryStore,
    UnknownBreakerError,
    counts_as_failure,
)
from tests.fakes.clock import FakeClock

START = 1_700_000_000.0


@pytest.fixture(params=["in_process", "shared_memory"])
def store(request: pytest.FixtureRequest) -> BreakerStore:
    return InProcessStore() if request.param == "in_process" else SharedMemoryStore(capacity=4)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def make_breaker(store: BreakerStore, clock: FakeClock, **config: int) -> CircuitBreaker:
    return CircuitBreaker("databricks", BreakerConfig(**config), store=store, clock=clock)


def make_open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.config.failure_threshold):
        breaker.record_failure()


def test_opens_at_the_failure_threshold(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_a_success_resets_consecutive_failures(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    for _ in range(4):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_fails_fast_while_open(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(59.9)
    assert not breaker.allow()
    assert breaker.state is BreakerState.OPEN


def test_lets_exactly_one_probe_through_after_the_timeout(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(60)
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()


def test_a_failed_probe_reopens(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(60)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(59)
    assert not breaker.allow()


def test_closes_after_the_success_threshold(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(60)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the first probe answered, so the next may go
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_prober_that_never_answers_does_not_wedge_half_open(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock, probe_timeout_ms=10000)
    make_open(breaker)
    clock.advance(60)
    assert breaker.allow()
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


def test_release_frees_the_probe_slot(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(60)
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_late_results_while_open_do_not_rearm_the_timer(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(30)
    breaker.record_failure()
    breaker.record_success()
    clock.advance(30)
    assert breaker.allow()


def test_snapshot_fields(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    assert breaker.snapshot() == {"state": "CLOSED", "failures": 0, "successes": 0, "last_failure_at": None,
                                  "next_attempt_at": None, "probe_in_flight": False}
    make_open(breaker)
    assert breaker.snapshot() == {"state": "OPEN", "failures": 5, "successes": 0, "last_failure_at": START,
                                  "next_attempt_at": START + 60, "probe_in_flight": False}
    clock.advance(60)
    breaker.allow()
    breaker.record_success()
    breaker.allow()
    assert breaker.snapshot() == {"state": "HALF_OPEN", "failures": 5, "successes": 1,
                                  "last_failure_at": START, "next_attempt_at": None, "probe_in_flight": True}


@pytest.mark.parametrize(("status", "failure"), [(None, True), (500, True), (503, True), (529, True),
                                                 (400, False), (404, False), (429, False)])
def test_only_upstream_failures_count(status: int | None, failure: bool) -> None:
    assert counts_as_failure(status) is failure


def test_registry_gets_by_name_and_snapshots_all(clock: FakeClock) -> None:
    registry = BreakerRegistry(["databricks", "ollama"], BreakerConfig(), store=InProcessStore(), clock=clock)
    make_open(registry.get("ollama"))
    assert registry.get("databricks") is registry.get("databricks")
    assert {name: snap["state"] for name, snap in registry.snapshots().items()} == {
        "databricks": "CLOSED", "ollama": "OPEN"}
    with pytest.raises(UnknownBreakerError):
        registry.get("openai")


def test_shared_store_refuses_names_beyond_its_capacity() -> None:
    store = SharedMemoryStore(capacity=1)
    CircuitBreaker("a", store=store).record_failure()
    with pytest.raises(ValueError, match="capacity"):
        CircuitBreaker("b", store=store).record_failure()
    with pytest.raises(ValueError, match="bytes"):
        CircuitBreaker("x" * 65, store=SharedMemoryStore(capacity=1)).record_failure()


def fork_child(body: Callable[[], object]) -> int:
    """Fork a child that runs ``body()`` and exits 0 if it returned; its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        signal.alarm(20)  # a deadlocked child dies and fails the test instead of hanging it
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int) -> int:
    """The exit code of a forked child."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def run_in_child(body: Callable[[], object]) -> int:
    """Fork, run ``body()`` in the child, and return the child's exit code."""
    return wait_child(fork_child(body))


def test_workers_forked_from_one_registry_share_its_state(clock: FakeClock) -> None:
    registry = BreakerRegistry(["databricks"], BreakerConfig(), store=SharedMemoryStore(), clock=clock)
    assert run_in_child(lambda: make_open(registry.get("databricks"))) == 0
    assert registry.get("databricks").state is BreakerState.OPEN
    assert not registry.get("databricks").allow()


def test_concurrent_processes_never_lose_an_update(clock: FakeClock) -> None:
    breaker = make_breaker(SharedMemoryStore(), clock, failure_threshold=10**6)

    def fail_many() -> None:
        for _ in range(2000):
            breaker.record_failure()

    children = [fork_child(fail_many) for _ in range(3)]
    fail_many()
    assert [wait_child(pid) for pid in children] == [0, 0, 0]
    assert breaker.snapshot()["failures"] == 8000


def test_a_fork_while_a_thread_holds_the_lock_does_not_deadlock_the_child(clock: FakeClock) -> None:
    store = SharedMemoryStore()
    breaker = make_breaker(store, clock)
    with store._thread_lock:
        code = run_in_child(breaker.record_failure)
    assert code == 0
    assert breaker.snapshot()["failures"] == 1


def test_store_updates_are_atomic_across_threads(store: BreakerStore) -> None:
    def increment(record: BreakerRecord) -> tuple[BreakerRecord, None]:
        failures = record.failures
        time.sleep(0)  # hand the GIL over mid-update, where a missing lock would lose writes
        return replace(record, failures=failures + 1), None

    run_threads(lambda: [store.update("databricks", increment) for _ in range(50)], 16)
    assert store.read("databricks").failures == 800


def test_concurrent_callers_get_one_half_open_probe(clock: FakeClock) -> None:
    breaker = make_breaker(SharedMemoryStore(), clock)
    make_open(breaker)
    clock.advance(60)
    barrier = threading.Barrier(32)
    allowed: list[bool] = []

    def call() -> None:
        barrier.wait()
        allowed.append(breaker.allow())
        breaker.record_failure()

    run_threads(call, 32)
    assert allowed.count(True) == 1
    assert breaker.state is BreakerState.OPEN


def test_probes_never_overlap_under_contention(clock: FakeClock) -> None:
    breaker = make_breaker(SharedMemoryStore(), clock, success_threshold=10**6)
    make_open(breaker)
    clock.advance(60)
    lock = threading.Lock()
    in_flight, most, probes = [0], [0], [0]

    def call() -> None:
        for _ in range(200):
            if not breaker.allow():
                continue
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
                probes[0] += 1
                in_flight[0] -= 1
            breaker.record_success()

    run_threads(call, 32)
    assert most[0] == 1
    assert probes[0] > 1


def run_threads(target: Callable[[], object], count: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_last_resort_call_turns_an_open_breaker_half_open_at_once(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    clock.advance(1)
    assert not breaker.allow()  # a candidate with others after it is refused
    assert breaker.allow(last_resort=True)  # the last one goes, as the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(last_resort=True)  # one probe at a time, even for the last resort
    breaker.record_success()
    assert breaker.allow(last_resort=True)
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_last_resort_probe_reopens_and_frees_the_slot(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    make_open(breaker)
    assert breaker.allow(last_resort=True)
    clock.advance(2)
    breaker.record_failure()
    assert breaker.snapshot()["state"] == "OPEN"
    assert breaker.snapshot()["next_attempt_at"] == START + 2 + 60  # the timer re-armed by the probe
    assert breaker.allow(last_resort=True)


def test_last_resort_changes_nothing_while_closed(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock)
    assert breaker.allow(last_resort=True)
    assert breaker.store.read("databricks") == BreakerRecord()


def test_open_for_is_the_remaining_recovery_time(store: BreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock, recovery_timeout_ms=45_000)
    assert breaker.open_for_s() == 0.0
    make_open(breaker)
    clock.advance(15)
    assert breaker.open_for_s() == pytest.approx(30.0)
    clock.advance(40)
    assert breaker.open_for_s() == 0.0
    assert breaker.allow()
    assert breaker.open_for_s() == 0.0  # half-open


def test_in_process_and_shared_memory_stores_agree_on_every_transition(clock: FakeClock) -> None:
    stores: list[BreakerStore] = [InProcessStore(), SharedMemoryStore(capacity=4)]
    breakers = [make_breaker(store, clock, failure_threshold=2) for store in stores]
    steps: list[Callable[[CircuitBreaker], object]] = [
        CircuitBreaker.record_failure, CircuitBreaker.record_failure, lambda b: b.allow(),
        lambda b: b.allow(last_resort=True), lambda b: b.allow(last_resort=True), CircuitBreaker.record_failure,
        lambda b: b.allow(last_resort=True), CircuitBreaker.record_success, CircuitBreaker.release,
        lambda b: b.allow(last_resort=True),
    ]
    for number, step in enumerate(steps):
        answers = [step(breaker) for breaker in breakers]
        assert answers[0] == answers[1], f"step {number}"
        assert stores[0].read("databricks") == stores[1].read("databricks"), f"step {number}"
        clock.advance(0.5)
    assert stores[1].read("databricks").state is BreakerState.HALF_OPEN
