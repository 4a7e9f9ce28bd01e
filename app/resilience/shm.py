"""Breaker records in memory shared by every gunicorn worker of one instance.

Like :data:`app.resilience.drain.DRAIN`, :data:`BREAKER_STORE` is created when this module is imported,
which happens in the gunicorn master before it forks (``gunicorn.conf.py`` and ``lynkr serve``
import the ``app`` package), so every worker inherits the same anonymous ``MAP_SHARED``
mapping. Each breaker owns a fixed-size slot, claimed by name on first use; slots never move,
so a process may cache where a name lives.

Two locks guard an update:

- ``fcntl.lockf`` on an unlinked temporary file opened before fork, between processes. The
  kernel drops the lock when its holder dies, so a worker killed mid-update (timeout, OOM)
  cannot wedge the others — a ``multiprocessing.Lock`` (a semaphore) would stay taken forever.
  ``lockf`` locks belong to a process, not to a thread or a file descriptor, which is exactly
  why they survive ``fork`` cleanly and why they do not exclude threads of the same process;
- a ``threading.Lock`` for that, taken first. A child re-creates it after ``fork``, in case the
  fork happened while another thread of the parent held it.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from app.resilience.breaker import BreakerRecord, BreakerState, Change

T = TypeVar("T")
NAME_BYTES = 64
# name, state, failures, successes, opened_at, last_failure_at, probe_started_at (NaN: None).
_SLOT = struct.Struct(f"<{NAME_BYTES}sBIIddd")
_STATES = tuple(BreakerState)


class SharedMemoryStore:
    """A :class:`~app.resilience.breaker.BreakerStore` that every forked worker shares."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._memory = mmap.mmap(-1, capacity * _SLOT.size)
        fd, path = tempfile.mkstemp(prefix="lynkr-breakers-")
        os.unlink(path)  # only the descriptor is needed; nothing is left on disk
        self._lock_fd = fd
        self._thread_lock = threading.Lock()
        self._slots: dict[str, int] = {}
        _STORES.add(self)
        weakref.finalize(self, _close, self._memory, fd)

    def update(self, name: str, change: Change[T]) -> T:
        """Apply ``change`` to the record of ``name`` under both locks.

        Most calls change nothing (``allow`` and a success while CLOSED); those are answered
        from an unlocked read, which at worst sees a state a moment old — one request more or
        less through a breaker that is opening — and keeps every request from queueing on the
        cross-process lock.
        """
        slot = self._slots.get(name)
        if slot is not None:
            record = self._read(slot)
            new, result = change(record)
            if new == record:
                return result
        with self._locked():
            slot = self._find(name)
            if slot is None:
                slot = self._claim(name)
            record = self._read(slot)
            new, result = change(record)
            if new != record:
                self._write(slot, name, new)
            return result

    def read(self, name: str) -> BreakerRecord:
        """The record of ``name``, or a fresh CLOSED one when no worker has used it yet."""
        slot = self._slots.get(name)
        if slot is not None:
            return self._read(slot)  # a slot never moves; a torn read only mixes two moments
        with self._locked():
            slot = self._find(name)
            return BreakerRecord() if slot is None else self._read(slot)

    def names(self) -> list[str]:
        """Every name that has a slot, in slot order."""
        with self._locked():
            return [name for name in map(self._name_at, range(self.capacity)) if name]

    def _reset_thread_lock(self) -> None:
        self._thread_lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)

    def _find(self, name: str) -> int | None:
        if name in self._slots:
            return self._slots[name]
        for slot in range(self.capacity):
            if self._name_at(slot) == name:
                self._slots[name] = slot
                return slot
        return None

    def _claim(self, name: str) -> int:
        encoded = name.encode()
        if not encoded or len(encoded) > NAME_BYTES:
            raise ValueError(f"breaker name {name!r} must be 1 to {NAME_BYTES} bytes long")
        for slot in range(self.capacity):
            if not self._name_at(slot):
                self._write(slot, name, BreakerRecord())
                self._slots[name] = slot
                return slot
        raise ValueError(f"all {self.capacity} breaker slots are taken; raise the store's capacity")

    def _name_at(self, slot: int) -> str:
        raw = self._memory[slot * _SLOT.size: slot * _SLOT.size + NAME_BYTES]
        return raw.rstrip(b"\0").decode()

    def _read(self, slot: int) -> BreakerRecord:
        _, state, failures, successes, opened, last_failure, probe = _SLOT.unpack_from(
            self._memory, slot * _SLOT.size)
        return BreakerRecord(_STATES[state], failures, successes, _time(opened), _time(last_failure),
                             _time(probe))

    def _write(self, slot: int, name: str, record: BreakerRecord) -> None:
        _SLOT.pack_into(self._memory, slot * _SLOT.size, name.encode(), _STATES.index(record.state),
                        record.failures, record.successes, _nan(record.opened_at),
                        _nan(record.last_failure_at), _nan(record.probe_started_at))


def _time(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _close(memory: mmap.mmap, fd: int) -> None:
    memory.close()
    os.close(fd)


_STORES: weakref.WeakSet[SharedMemoryStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._reset_thread_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

BREAKER_STORE = SharedMemoryStore()
