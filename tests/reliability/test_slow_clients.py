"""Slow clients against a real ``lynkr serve`` (two workers, default threads): 200 connections that
send their headers and 9 bytes of a 100 000-byte body cannot keep ``/health/live`` or a normal request
from answering within a second; a slow body ends as 408, and its connection is closed."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.conftest import make_gateway, mocked_upstream  # noqa: F401  (fixtures)
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SLOW_CONNECTIONS = 200
HEAD = (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"anthropic-version: 2023-06-01\r\nContent-Length: 100000\r\n\r\n")


@contextlib.contextmanager
def slow_bodies(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent their headers and the first 9 bytes of their body."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(HEAD + b'{"model":')
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def timed(call: Callable[[], requests.Response]) -> tuple[float, int]:
    started = time.monotonic()
    status = call().status_code
    return time.monotonic() - started, status


@pytest.mark.parametrize("threads", [None, "32"], ids=["default-threads", "32-threads"])
def test_slow_bodies_cannot_stall_the_instance(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream,  # noqa: F811
        threads: str | None) -> None:
    """With the default 1024 threads the slow bodies simply wait; with 32 only 8 per worker may, and
    the rest are cut at once."""
    gateway = make_gateway(LYNKR_THREADS=threads, WEB_CONCURRENCY="2", LYNKR_BODY_READ_TIMEOUT_MS="30000")
    with slow_bodies(gateway.port, SLOW_CONNECTIONS) as sockets:
        probes = []
        for _ in range(6):
            probes.append(timed(lambda: requests.get(gateway.url + "/health/live", timeout=5)))
            probes.append(timed(lambda: requests.post(gateway.url + "/v1/messages", json=message_body("Hi"),
                                                      headers=ANTHROPIC_HEADERS, timeout=5)))
            time.sleep(0.3)
        answered = _answered(sockets)

    assert [status for _, status in probes] == [200] * len(probes)
    assert max(seconds for seconds, _ in probes) < 1.0, probes
    if threads is None:
        assert answered == []  # every slow body may still arrive
    else:
        assert len(answered) >= SLOW_CONNECTIONS - 2 * 8  # all but the 8 slots of each worker
        assert all(answer.startswith(b"HTTP/1.1 408 ") and b'"timeout_error"' in answer for answer in answered)


def _answered(sockets: list[socket.socket]) -> list[bytes]:
    """What the server has answered on each socket so far."""
    answers = []
    for sock in sockets:
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            if data := sock.recv(65536):
                answers.append(data)
    return answers


def test_a_body_that_pauses_past_the_deadline_is_408(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream) -> None:  # noqa: F811
    gateway = make_gateway(LYNKR_BODY_READ_TIMEOUT_MS="500")
    with slow_bodies(gateway.port, 1) as [sock]:
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
        sock.settimeout(5)
        while chunk := sock.recv(65536):  # to the end: the server closes the connection
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"timeout_error"' in answer
    assert 0.4 < waited < 3


def test_slow_headers_and_idle_keep_alives_cannot_stall_the_instance(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream) -> None:  # noqa: F811
    """100 connections sending their headers a line at a time (and then stopping), and 100 kept-alive
    connections left idle after one request: health and a normal request still answer within 1 s."""
    gateway = make_gateway(LYNKR_THREADS=None, WEB_CONCURRENCY="2")
    slow_headers, idle = [], []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
            slow_headers.append(sock)
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            idle.append(sock)  # kept alive, sending nothing more
        probes = [timed(lambda: requests.get(gateway.url + "/health/live", timeout=5)) for _ in range(5)]
        probes += [timed(lambda: requests.post(gateway.url + "/v1/messages", json=message_body("Hi"),
                                               headers=ANTHROPIC_HEADERS, timeout=5)) for _ in range(5)]
    finally:
        for sock in (*slow_headers, *idle):
            sock.close()

    assert [status for _, status in probes] == [200] * len(probes)
    assert max(seconds for seconds, _ in probes) < 1.0, probes
