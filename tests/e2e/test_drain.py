"""Shutdown with real signals: drain for the pre-stop delay, finish in-flight streams, exit 0."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest
import requests

from app.anthropic.events import validate_stream
from tests.e2e.helpers import Gateway, SSERead, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply

PRESTOP_S = 2.0
PIECES = [f"part{n} " for n in range(9)]


class StreamReader(threading.Thread):
    """Reads one streamed response on a thread; ``started`` is set at the first text delta."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(name="e2e-stream-reader", daemon=True)
        self.gateway = gateway
        self.started = threading.Event()
        self.seen = SSERead()
        self.status: int | None = None
        self.finished_at: float | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with self.gateway.post(message_body(stream=True), stream=True) as response:
                self.status = response.status_code
                self.seen = read_sse(response, until=self._progress)
            self.finished_at = time.monotonic()
        except BaseException as exc:
            self.failure = exc
            self.started.set()

    def _progress(self, seen: SSERead) -> bool:
        if "content_block_delta" in seen.types:
            self.started.set()
        return False


def _get(gateway: Gateway, path: str) -> requests.Response:
    """A GET on a fresh connection, so it proves the listening socket still accepts."""
    return requests.get(gateway.url + path, headers={"Connection": "close"}, timeout=5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_then_finishes_in_flight_stream(make_gateway: Callable[..., Gateway],
                                                      mocked_upstream: FakeAnthropicUpstream,
                                                      sig: signal.Signals) -> None:
    """During the pre-stop window: ready 503, new requests 503, live 200; the open stream completes; exit 0."""
    gateway = make_gateway(LYNKR_PRESTOP_DELAY_MS=int(PRESTOP_S * 1000), GRACEFUL_SHUTDOWN_TIMEOUT=15000)
    mocked_upstream.script(StreamReply(ev.text_events(PIECES), event_delay=0.4))
    assert _get(gateway, "/health/ready").status_code == 200
    reader = StreamReader(gateway)
    reader.start()
    assert reader.started.wait(10), "the stream never started"
    assert reader.failure is None

    signalled = time.monotonic()
    gateway.proc.send_signal(sig)
    assert wait_until(lambda: _get(gateway, "/health/ready").status_code == 503, timeout=1.5)
    ready = _get(gateway, "/health/ready").json()
    refused = gateway.post(message_body())
    live = _get(gateway, "/health/live")
    probed_within = time.monotonic() - signalled

    assert probed_within < PRESTOP_S, f"probes took {probed_within:.2f} s, past the pre-stop window"
    assert ready["status"] == "unavailable"
    assert ready["checks"]["draining"] == {"ok": False}
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert refused.headers["retry-after"].isdigit()
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}

    reader.join(timeout=30)
    assert not reader.is_alive(), "the in-flight stream did not finish"
    assert reader.failure is None, f"the in-flight stream failed: {reader.failure!r}"
    assert reader.status == 200
    validate_stream(reader.seen.events)
    assert reader.seen.types[-1] == "message_stop"
    assert reader.seen.text() == "".join(PIECES)
    assert reader.finished_at is not None
    assert reader.finished_at - signalled > PRESTOP_S, "the stream ended before the graceful stop began"

    assert gateway.proc.wait(timeout=gateway.shutdown_budget_s()) == 0
    assert not gateway.accepting()
    name = signal.Signals(sig).name
    assert f"{name}: draining for {PRESTOP_S:.1f} s before a graceful stop" in gateway.log_text()
    assert f"{name} again" not in gateway.log_text()
    assert len(mocked_upstream.message_requests()) == 1, "the refused request must not reach the upstream"
