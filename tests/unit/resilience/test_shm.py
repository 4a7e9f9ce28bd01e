"""Breaker records in shared memory: fixed slots by name, exact round trips, shared with forked workers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace

import pytest

from app.resilience.breaker import BreakerRecord, BreakerState
from app.resilience.shm import BREAKER_STORE, NAME_BYTES, SharedMemoryStore


def put(record: BreakerRecord) -> Callable[[BreakerRecord], tuple[BreakerRecord, BreakerRecord]]:
    """A change that stores ``record`` and returns the one it replaced."""
    return lambda old: (record, old)


def test_a_record_round_trips_with_every_field() -> None:
    store = SharedMemoryStore(capacity=2)
    record = BreakerRecord(BreakerState.HALF_OPEN, 3, 1, 1_700_000_000.25, 1_700_000_001.5, None)
    assert store.update("databricks", put(record)) == BreakerRecord()
    assert store.read("databricks") == record
    assert store.update("databricks", lambda old: (old, old.failures)) == 3


def test_an_unknown_name_reads_closed_without_taking_a_slot() -> None:
    store = SharedMemoryStore(capacity=1)
    assert store.read("nobody") == BreakerRecord()
    assert store.names() == []
    store.update("ollama", put(BreakerRecord(failures=1)))
    assert store.names() == ["ollama"]


def test_names_keep_their_slots_in_claim_order() -> None:
    store = SharedMemoryStore(capacity=3)
    for name in ("b", "a", "c"):
        store.update(name, put(BreakerRecord(failures=len(name))))
    store.update("a", put(BreakerRecord(state=BreakerState.OPEN, opened_at=5.0)))
    assert store.names() == ["b", "a", "c"]
    assert [store.read(name).state for name in ("b", "a", "c")] == [
        BreakerState.CLOSED, BreakerState.OPEN, BreakerState.CLOSED]


def test_name_length_and_capacity_limits() -> None:
    store = SharedMemoryStore(capacity=1)
    store.update("x" * NAME_BYTES, put(BreakerRecord()))
    assert store.names() == ["x" * NAME_BYTES]
    with pytest.raises(ValueError, match=r"^all 1 breaker slots are taken; raise the store's capacity$"):
        store.update("other", put(BreakerRecord()))
    with pytest.raises(ValueError, match=r"^breaker name 'yyy.*' must be 1 to 64 bytes long$"):
        SharedMemoryStore(capacity=1).update("y" * (NAME_BYTES + 1), put(BreakerRecord()))


def test_a_forked_worker_and_its_parent_see_each_others_writes() -> None:
    store = SharedMemoryStore(capacity=4)
    store.update("parent", put(BreakerRecord(failures=1)))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.alarm(20)
        ok = store.read("parent").failures == 1
        store.update("child", put(BreakerRecord(BreakerState.OPEN, opened_at=9.0)))
        store.update("parent", lambda old: (replace(old, failures=old.failures + 1), None))
        os._exit(0 if ok else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert store.read("parent").failures == 2
    assert store.read("child") == BreakerRecord(BreakerState.OPEN, opened_at=9.0)
    assert store.names() == ["parent", "child"]


def test_the_process_store_exists_before_any_fork() -> None:
    assert isinstance(BREAKER_STORE, SharedMemoryStore)
    assert BREAKER_STORE.capacity == 64
