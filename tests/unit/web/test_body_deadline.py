"""Body reads under a deadline: a slot lets a read wait the full timeout, none means a short probation."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator

import pytest

from app.errors import RequestTimeoutError
from app.web.body_deadline import PROBATION_S, BodyDeadline, DeadlineInput, WaitSlots


class SocketStream(io.RawIOBase):
    """``wsgi.input`` reading straight from a socket, as gunicorn's body does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self, size: int = -1) -> bytes:
        return self.sock.recv(65536 if size is None or size < 0 else size)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_body_already_sent_is_read_even_without_a_free_slot(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(b'{"model":"m"}')
    slots = WaitSlots(0)
    assert DeadlineInput(SocketStream(server), server, 5.0, slots).read(100) == b'{"model":"m"}'
    assert slots.taken == 0


def test_without_a_slot_a_stalled_read_ends_after_the_probation(pair: tuple[socket.socket, socket.socket]) -> None:
    server, _client = pair
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as raised:
        DeadlineInput(SocketStream(server), server, 5.0, WaitSlots(0)).read(100)
    assert PROBATION_S <= time.monotonic() - started < 1.0
    assert (raised.value.status, raised.value.error_type) == (408, "timeout_error")
    assert server.recv(1) == b""  # the read side is shut: closing it will not linger


def test_with_a_slot_a_read_waits_the_deadline_and_gives_the_slot_back(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, _client = pair
    slots = WaitSlots(1)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        DeadlineInput(SocketStream(server), server, 0.3, slots).read(100)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert slots.taken == 0


def test_slots_are_bounded() -> None:
    slots = WaitSlots(2)
    assert [slots.take(), slots.take(), slots.take()] == [True, True, False]
    slots.give()
    assert slots.take() is True


def test_the_middleware_leaves_requests_without_a_gunicorn_socket_alone(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, _client = pair
    seen: list[object] = []

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        seen.append(environ["wsgi.input"])
        return [b"ok"]

    middleware = BodyDeadline(app, timeout_s=1.0, slow_limit=1)
    stream = io.BytesIO(b"{}")
    middleware({"wsgi.input": stream, "CONTENT_LENGTH": "2"}, lambda *a: None)
    middleware({"wsgi.input": stream, "CONTENT_LENGTH": "2", "gunicorn.socket": server}, lambda *a: None)
    middleware({"wsgi.input": stream, "gunicorn.socket": server}, lambda *a: None)  # no body
    assert seen[0] is stream
    assert isinstance(seen[1], DeadlineInput)
    assert seen[2] is stream
    assert server.gettimeout() is None  # blocking again before the response is written
