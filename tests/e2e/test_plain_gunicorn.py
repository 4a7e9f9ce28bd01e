"""Plain ``gunicorn -c gunicorn.conf.py app.wsgi:application`` (what a WSGI host runs) behaves like
``lynkr serve``: one scrape counts every worker's requests, one breaker record counts the failures
of every worker, and SIGTERM drains before it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import REPO, free_port, gateway_env, stop_gateway, wait_live
from tests.e2e.helpers import Gateway, message_body, wait_until
from tests.e2e.test_routing_e2e import exchange, worker_pids
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

THRESHOLD = 3


@pytest.fixture
def plain_gunicorn(tmp_path_factory: pytest.TempPathFactory,
                   mocked_upstream: FakeAnthropicUpstream) -> Iterator[Callable[..., Gateway]]:
    """Starts ``python -m gunicorn -c gunicorn.conf.py app.wsgi:application`` with two workers."""
    started: list[Gateway] = []

    def start(**overrides: Any) -> Gateway:
        tmp = tmp_path_factory.mktemp("gunicorn")
        (tmp / "home").mkdir()
        port = free_port()
        env = gateway_env(tmp, port, mocked_upstream, {"WEB_CONCURRENCY": "2", **overrides})
        log_path = tmp / "gateway.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                                     "app.wsgi:application"], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        gateway = Gateway(proc=proc, port=port, workdir=tmp, log_path=log_path, env=env)
        started.append(gateway)
        wait_live(gateway)
        assert wait_until(lambda: len(worker_pids(gateway)) == 2, timeout=20), gateway.log_text()
        return gateway

    yield start
    problems = [problem for gateway in started if (problem := stop_gateway(gateway))]
    if problems:
        pytest.fail("; ".join(problems))


def until_each_worker_served(gateway: Gateway, times: int, body: dict[str, Any]) -> Counter[int | None]:
    """Fresh connections until each worker has served ``times`` requests; returns who served what."""
    workers = worker_pids(gateway)
    served: Counter[int | None] = Counter()
    for _ in range(80):
        answer = exchange(gateway, "POST", "/v1/messages", body)
        served[answer.worker] += 1
        if all(served[pid] >= times for pid in workers):
            return served
    pytest.fail(f"requests per worker: {dict(served)}")


def messages_counted(gateway: Gateway) -> float:
    text = requests.get(gateway.url + "/metrics/prometheus", headers={"Connection": "close"}, timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "http_requests_total" and sample.labels.get("route") == "/v1/messages")


def test_one_scrape_counts_every_worker_s_requests(plain_gunicorn: Callable[..., Gateway]) -> None:
    gateway = plain_gunicorn()
    sent = sum(until_each_worker_served(gateway, 3, message_body()).values())

    # Each scrape lands on either worker; every one must see all requests.
    assert wait_until(lambda: messages_counted(gateway) == sent, timeout=5), (messages_counted(gateway), sent)
    assert [messages_counted(gateway) for _ in range(6)] == [sent] * 6


def test_a_breaker_opened_in_one_worker_is_open_in_the_other(plain_gunicorn: Callable[..., Gateway],
                                                             mocked_upstream: FakeAnthropicUpstream) -> None:
    mocked_upstream.responder = lambda request: ErrorReply(500)
    gateway = plain_gunicorn(CIRCUIT_BREAKER_FAILURE_THRESHOLD=THRESHOLD, API_RETRY_MAX_RETRIES=0,
                             FALLBACK_ENABLED="false")

    served = until_each_worker_served(gateway, THRESHOLD, message_body())
    sent = sum(served.values())

    assert sent >= 2 * THRESHOLD
    # The only provider is never refused: past the threshold each request is a half-open probe.
    assert len(mocked_upstream.message_requests()) == sent
    # One record counted every worker's failures; per-worker breakers would each show their own.
    views: dict[int | None, dict[str, Any]] = {}
    for _ in range(40):
        view = exchange(gateway, "GET", "/metrics/circuit-breakers")
        views[view.worker] = view.json()["breakers"]["databricks"]
        if set(views) >= set(served):
            break
    assert set(views) >= set(served), views
    assert {(view["state"], view["failures"]) for view in views.values()} == {("OPEN", sent)}


def test_sigterm_drains_before_the_graceful_stop(plain_gunicorn: Callable[..., Gateway]) -> None:
    gateway = plain_gunicorn(LYNKR_PRESTOP_DELAY_MS=2000)
    assert requests.get(gateway.url + "/health/ready", timeout=5).status_code == 200

    gateway.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    # The master sets the shared drain flag when it handles the signal: a request sent in the same
    # instant may still be served, so readiness is polled for well inside the 2 s pre-stop window.
    assert wait_until(lambda: requests.get(gateway.url + "/health/ready", headers={"Connection": "close"},
                                           timeout=5).status_code == 503, timeout=1.0)
    ready = requests.get(gateway.url + "/health/ready", headers={"Connection": "close"}, timeout=5)
    model = gateway.post(message_body())

    assert ready.status_code == 503
    assert ready.json()["checks"]["draining"] == {"ok": False}
    assert model.status_code == 503
    assert model.json()["error"]["type"] == "overloaded_error"
    assert gateway.proc.wait(timeout=gateway.shutdown_budget_s()) == 0
    assert time.monotonic() - signalled >= 2.0
