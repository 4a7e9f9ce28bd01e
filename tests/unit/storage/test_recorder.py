"""The background writer: batches, keeps order, never drops a write, bounds what it holds."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from app.storage.db import db
from app.storage.recorder import Recorder


@pytest.fixture
def database(app: Flask) -> Any:
    return db


def test_jobs_run_in_order_on_the_writer_thread(database: Any) -> None:
    recorder = Recorder()
    ran: list[tuple[int, str]] = []
    for n in range(5):
        recorder.submit(lambda n=n: ran.append((n, threading.current_thread().name)), holds_bytes=100)
    assert recorder.flush()
    assert ran == [(n, "lynkr-recorder") for n in range(5)]


def test_a_failing_job_is_logged_and_the_others_are_kept(database: Any, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    ran: list[int] = []
    recorder.submit(lambda: ran.append(1))
    recorder.submit(lambda: 1 / 0)
    recorder.submit(lambda: ran.append(3))
    assert recorder.flush()
    assert ran == [1, 3]
    assert "background write failed" in caplog.text


def test_past_the_byte_budget_the_caller_writes_itself(database: Any) -> None:
    recorder = Recorder(max_pending_bytes=1000)
    gate = threading.Event()
    where: dict[str, str] = {}
    recorder.submit(gate.wait, holds_bytes=600)  # occupies the writer and 600 bytes of budget
    recorder.submit(lambda: where.setdefault("second", threading.current_thread().name), holds_bytes=300)
    recorder.submit(lambda: where.setdefault("third", threading.current_thread().name), holds_bytes=300)
    # The third would hold 1 200 bytes: it ran at once, on this thread, rather than wait in memory.
    assert where == {"third": threading.current_thread().name}
    gate.set()
    assert recorder.flush()
    assert where["second"] == "lynkr-recorder"
    # Once written, the budget is free again.
    recorder.submit(lambda: where.setdefault("fourth", threading.current_thread().name), holds_bytes=900)
    assert recorder.flush()
    assert where["fourth"] == "lynkr-recorder"


def test_one_job_larger_than_the_budget_still_queues_when_nothing_else_waits(database: Any) -> None:
    recorder = Recorder(max_pending_bytes=10)
    where: list[str] = []
    recorder.submit(lambda: where.append(threading.current_thread().name), holds_bytes=1_000_000)
    assert recorder.flush()
    assert where == ["lynkr-recorder"]
