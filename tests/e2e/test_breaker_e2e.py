"""A single-provider gateway and its breaker, through ``lynkr serve`` with two workers.

Breakers count client requests, not attempts: a blip that a retry rides out counts nothing, and a
request counts once when all its retries failed. When the breaker has opened, the only provider is
not refused for ``CIRCUIT_BREAKER_TIMEOUT``: the next request goes as the half-open probe, so a
gateway whose upstream recovered answers at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream

pytestmark = pytest.mark.slow


def breaker(gateway: Gateway) -> dict[str, Any]:
    view = requests.get(gateway.url + "/metrics/circuit-breakers", timeout=10).json()
    return view["breakers"]["databricks"]


def post(gateway: Gateway) -> requests.Response:
    return requests.post(gateway.url + "/v1/messages", json=message_body("Say hello."), headers=ANTHROPIC_HEADERS,
                         timeout=30)


def test_a_blip_does_not_lock_out_a_single_provider(make_gateway: Callable[..., Gateway],
                                                    mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(CIRCUIT_BREAKER_FAILURE_THRESHOLD="2", CIRCUIT_BREAKER_TIMEOUT="60000",
                           API_RETRY_MAX_RETRIES="1", API_RETRY_INITIAL_DELAY="20", FALLBACK_ENABLED="false")

    mocked_upstream.script(ErrorReply(503))  # one failed attempt, then the retry answers
    assert post(gateway).status_code == 200
    assert (breaker(gateway)["state"], breaker(gateway)["failures"]) == ("CLOSED", 0)

    mocked_upstream.script(*[ErrorReply(503)] * 4)  # two requests, each failing both attempts
    assert [post(gateway).status_code for _ in range(2)] == [503, 503]
    opened = breaker(gateway)
    assert (opened["state"], opened["failures"]) == ("OPEN", 2)  # 4 attempts, 2 requests
    assert len(mocked_upstream.message_requests()) == 6

    started = time.monotonic()
    recovered = post(gateway)  # the upstream is back: no 503 for the rest of the 60 s
    assert recovered.status_code == 200
    assert time.monotonic() - started < 5
    assert len(mocked_upstream.message_requests()) == 7
    assert (breaker(gateway)["state"], breaker(gateway)["successes"]) == ("HALF_OPEN", 1)
    assert post(gateway).status_code == 200
    assert breaker(gateway)["state"] == "CLOSED"
