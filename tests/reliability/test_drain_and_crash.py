"""Drain and crash under load against a real ``lynkr serve`` (two workers): 64 streams in flight all
finish after SIGTERM while readiness says 503 at once; a worker SIGKILLed under load is replaced, and
only requests it was holding fail."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import requests

from app.anthropic.events import validate_stream
from tests.e2e.conftest import make_gateway, mocked_upstream  # noqa: F401  (fixtures)
from tests.e2e.helpers import Gateway, SSERead, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
STREAMS = 64
PIECES = [f"part{n} " for n in range(8)]


def _stream(gateway: Gateway, outcomes: list[tuple[int, list[str], str]], started: threading.Semaphore) -> None:
    announced = False

    def progress(read: SSERead) -> bool:
        nonlocal announced
        if not announced and "content_block_delta" in read.types:
            announced = True
            started.release()
        return False

    with gateway.post(message_body(stream=True), stream=True, timeout=60) as response:
        seen = read_sse(response, until=progress)
    validate_stream(seen.events)
    outcomes.append((response.status_code, seen.types, seen.text()))


def test_sixty_four_streams_drain_to_the_end(make_gateway: Callable[..., Gateway],  # noqa: F811
                                             mocked_upstream: FakeAnthropicUpstream) -> None:  # noqa: F811
    gateway = make_gateway(WEB_CONCURRENCY="2", LYNKR_THREADS="96", LYNKR_PRESTOP_DELAY_MS="1000",
                           GRACEFUL_SHUTDOWN_TIMEOUT="30000")
    mocked_upstream.responder = lambda request: StreamReply(ev.text_events(PIECES), event_delay=0.3)
    outcomes: list[tuple[int, list[str], str]] = []
    started = threading.Semaphore(0)
    readers = [threading.Thread(target=_stream, args=(gateway, outcomes, started), daemon=True)
               for _ in range(STREAMS)]
    for reader in readers:
        reader.start()
    for _ in range(STREAMS):
        assert started.acquire(timeout=30), "not every stream started"

    signalled = time.monotonic()
    gateway.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: requests.get(gateway.url + "/health/ready", timeout=2).status_code == 503,
                      timeout=1.0)
    ready_within = time.monotonic() - signalled
    for reader in readers:
        reader.join(timeout=60)

    assert ready_within < 1.0
    assert len(outcomes) == STREAMS
    assert all(status == 200 and types[-1] == "message_stop" and text == "".join(PIECES)
               for status, types, text in outcomes)
    assert gateway.proc.wait(timeout=gateway.shutdown_budget_s()) == 0


def test_a_worker_killed_under_load_is_replaced(make_gateway: Callable[..., Gateway],  # noqa: F811
                                                mocked_upstream: FakeAnthropicUpstream) -> None:  # noqa: F811
    gateway = make_gateway(WEB_CONCURRENCY="2")
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                statuses.append(gateway.post(message_body(), timeout=10).status_code)
            except requests.RequestException:
                statuses.append(0)  # the connection the killed worker held

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    victims = _worker_pids(gateway)
    assert len(victims) == 2
    os.kill(victims[0], signal.SIGKILL)
    replaced = wait_until(lambda: len(set(_worker_pids(gateway)) - {victims[0]}) == 2, timeout=20)
    time.sleep(1.0)
    before_end = len(statuses)
    time.sleep(1.0)
    stop.set()
    for worker in workers:
        worker.join(timeout=15)

    assert replaced, "the killed worker was not replaced"
    assert statuses.count(200) > 20
    assert len([s for s in statuses if s != 200]) <= 4  # at most the requests the killed worker held
    assert all(status == 200 for status in statuses[before_end:])  # healthy again afterwards


def _worker_pids(gateway: Gateway) -> list[int]:
    """The gunicorn workers: the children of ``lynkr serve``, which is the master itself."""
    try:
        with open(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []
