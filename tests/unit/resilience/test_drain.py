"""The drain flag crosses fork; the request cap waits briefly for a slot, then refuses."""

from __future__ import annotations

import os
import threading

from app.resilience.drain import DrainFlag, InflightLimiter


def test_drain_flag_set_in_a_child_is_seen_by_the_parent() -> None:
    flag = DrainFlag()
    pid = os.fork()
    if pid == 0:
        flag.start()
        os._exit(0)
    os.waitpid(pid, 0)
    assert flag.draining


def test_a_waiting_request_gets_the_slot_another_releases() -> None:
    limiter = InflightLimiter(1, wait_s=5)
    assert limiter.try_acquire()
    threading.Timer(0.05, limiter.release).start()
    assert limiter.try_acquire()
    assert limiter.in_flight == 1


def test_a_full_limiter_refuses_after_its_wait() -> None:
    limiter = InflightLimiter(2, wait_s=0.01)
    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.release()
    assert limiter.try_acquire(wait_s=0)
