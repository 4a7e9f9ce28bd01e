"""A real nginx running the shipped ``deploy/nginx.conf`` in front of a real ``lynkr serve``.

A long stream must reach the client event by event (not in one piece when the upstream ends),
and a client that stops sending its request body must be cut by nginx before the gateway ever
sees the request.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.anthropic.sse import SSEDecoder
from tests.e2e.conftest import free_port
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body, wait_until
from tests.e2e.nginx_helpers import Nginx, running_nginx, site_for_test
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.fakes.behaviours import Pause

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DELTAS = 12
EVENT_DELAY_S = 0.3
BODY_TIMEOUT_S = 1


@pytest.fixture
def behind_nginx(make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream,
                 tmp_path: Path) -> Iterator[tuple[Gateway, Nginx]]:
    """``lynkr serve`` with the shipped site in front of it (body timeout shortened to 1 s)."""
    gateway = make_gateway()
    port = free_port()
    site = site_for_test(port, gateway.port, client_body_timeout=f"{BODY_TIMEOUT_S}s")
    with running_nginx(tmp_path / "nginx", site, port) as nginx:
        yield gateway, nginx


def test_a_long_stream_arrives_through_nginx_event_by_event(behind_nginx: tuple[Gateway, Nginx],
                                                            mocked_upstream: FakeAnthropicUpstream) -> None:
    """Each text delta reaches the client about when the upstream sent it, not all at the end."""
    _, nginx = behind_nginx
    events: list[dict[str, Any] | Pause] = [*ev.text_events([f"{n} " for n in range(DELTAS)])]
    mocked_upstream.script(StreamReply(events, event_delay=EVENT_DELAY_S))
    arrivals: list[float] = []
    texts: list[str] = []
    decoder = SSEDecoder()
    started = time.monotonic()
    with requests.post(nginx.url + "/v1/messages", data=json.dumps(message_body(stream=True)),
                       headers=ANTHROPIC_HEADERS, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for chunk in response.iter_content(chunk_size=None):
            for frame in decoder.feed(chunk):
                data = frame.json()
                if data["type"] == "content_block_delta":
                    arrivals.append(time.monotonic() - started)
                    texts.append(data["delta"]["text"])

    assert texts == [f"{n} " for n in range(DELTAS)]
    # The upstream spends about DELTAS * EVENT_DELAY_S (3.6 s) on the deltas. Buffered, they would
    # all land together at the end; unbuffered, the first arrives long before the last and no two
    # consecutive ones arrive much closer together than the upstream sent them.
    assert arrivals[-1] - arrivals[0] >= (DELTAS - 2) * EVENT_DELAY_S
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) > EVENT_DELAY_S / 3, gaps
    [seen] = mocked_upstream.wait_for_requests(1)
    assert seen.body["stream"] is True


def test_a_client_stalling_its_body_is_cut_by_nginx_before_the_gateway_sees_it(
        behind_nginx: tuple[Gateway, Nginx], mocked_upstream: FakeAnthropicUpstream) -> None:
    """Half a body, then silence: nginx gives up after client_body_timeout; no request reaches lynkr."""
    gateway, nginx = behind_nginx
    body = json.dumps(message_body()).encode()
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"anthropic-version: 2023-06-01\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=BODY_TIMEOUT_S + 10) as sock:
        sock.sendall(head + body[: len(body) // 2])
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        cut_after = time.monotonic() - started

    assert BODY_TIMEOUT_S * 0.9 <= cut_after < BODY_TIMEOUT_S + 5, cut_after
    # nginx answers 408 or just closes; either way never a gateway response.
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]
    assert wait_until(lambda: '"POST /v1/messages HTTP/1.1" 408' in nginx.log("access.log"), timeout=5)
    assert mocked_upstream.requests == []
    assert '"/v1/messages"' not in gateway.log_text()
