"""Metrics through real gunicorn with two workers: one scrape counts every worker's requests
exactly, a stream is timed to its last byte, ``lynkr serve`` prepares (and empties) the
multiprocess directory, and a dead worker's live gauges leave the sums while its counts stay."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from app.host import cgroup_cpu_quota
from tests.e2e.helpers import Gateway, SSERead, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, Pause, StreamReply

pytestmark = pytest.mark.e2e

ROUTE = "/v1/messages"
MIN_REQUESTS = 12
MAX_REQUESTS = 200
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(gateway: Gateway) -> Samples:
    """``/metrics/prometheus`` on a fresh connection, parsed: {(sample name, labels): value}."""
    response = requests.get(gateway.url + "/metrics/prometheus", timeout=10)
    assert response.status_code == 200
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (sample, got), v in samples.items() if sample == name and wanted <= got)


def settled(gateway: Gateway, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until ``name`` reaches ``expected``: a worker records a request when the server closes
    the response, which may come a moment after the client has read the last byte."""
    last: list[Samples] = [{}]

    def reached() -> bool:
        last[0] = scrape(gateway)
        return value(last[0], name, **labels) >= expected

    wait_until(reached, timeout=5, interval=0.05)
    return last[0]


def metrics_dir_of(gateway: Gateway) -> Path:
    """The directory ``lynkr serve`` made under the gateway's TMPDIR (its working directory)."""
    made = list(gateway.workdir.glob("lynkr-metrics-*"))
    assert len(made) == 1, f"expected one lynkr-metrics-* directory in {gateway.workdir}, found {made}"
    return made[0]


def messages_by_worker(metrics_dir: Path) -> dict[int, float]:
    """``http_requests_total`` for /v1/messages in each worker's own counter file, by pid."""
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)
            if sample == "http_requests_total" and labels.get("route") == ROUTE:
                pid = int(path.stem.split("_")[1])
                counts[pid] = counts.get(pid, 0) + count
    return counts


def send_until_both_workers_served(gateway: Gateway, metrics_dir: Path) -> int:
    """POST /v1/messages on a new connection each time until two workers have answered (and at
    least MIN_REQUESTS were sent); returns how many were sent."""
    sent = 0
    while sent < MAX_REQUESTS:
        response = gateway.post(message_body(f"Say hello {sent}."))  # distinct: never a prompt-cache hit
        assert response.status_code == 200, response.text
        sent += 1
        if sent >= MIN_REQUESTS and len(messages_by_worker(metrics_dir)) >= 2:
            return sent
    pytest.fail(f"{MAX_REQUESTS} requests on new connections all went to one worker")


def worker_pids(gateway: Gateway) -> list[int]:
    """The gunicorn master's child processes."""
    pid = gateway.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_one_scrape_counts_every_workers_requests_exactly(make_gateway: Callable[..., Gateway],
                                                         mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(WEB_CONCURRENCY=2)
    metrics_dir = metrics_dir_of(gateway)

    sent = send_until_both_workers_served(gateway, metrics_dir)

    samples = settled(gateway, "http_requests_total", sent, route=ROUTE)
    assert value(samples, "http_requests_total", route=ROUTE) == sent
    assert value(samples, "http_requests_total", method="POST", route=ROUTE, status="200") == sent
    assert value(samples, "http_request_duration_seconds_count", route=ROUTE) == sent
    assert value(samples, "lynkr_upstream_calls_total", provider="databricks", outcome="success") == sent
    assert sum(messages_by_worker(metrics_dir).values()) == sent
    observed = requests.get(gateway.url + "/metrics/observability", timeout=10).json()
    assert observed["requests"]["by_route"]["POST " + ROUTE] == sent
    assert observed["latency"]["count"] == sent
    assert observed["providers"]["databricks"] == {"success": sent, "failure": 0, "retries": 0}


def test_a_stream_is_observed_when_its_last_byte_is_sent(make_gateway: Callable[..., Gateway],
                                                         mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(WEB_CONCURRENCY=2)
    before = scrape(gateway)
    mocked_upstream.script(StreamReply([ev.message_start(), ev.text_start(), ev.text_delta("slow "), Pause(1.1),
                                        ev.text_delta("finish"), ev.block_stop(), *ev.message_end()]))

    during: list[float] = []

    def scrape_once_mid_stream(seen: SSERead) -> bool:
        if not during and "content_block_delta" in seen.types:
            during.append(value(scrape(gateway), "lynkr_active_streams"))
        return False

    started = time.monotonic()
    with gateway.post(message_body(stream=True), stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response, until=scrape_once_mid_stream)
    assert time.monotonic() - started >= 1.0
    assert seen.types[-1] == "message_stop"
    assert during == [1]  # counted by its worker, summed by whichever worker answered the scrape

    count = value(before, "http_request_duration_seconds_count", route=ROUTE) + 1
    after = settled(gateway, "http_request_duration_seconds_count", count, route=ROUTE)
    assert value(after, "http_request_duration_seconds_count", route=ROUTE) == count
    took = (value(after, "http_request_duration_seconds_sum", route=ROUTE)
            - value(before, "http_request_duration_seconds_sum", route=ROUTE))
    assert took >= 1.0
    assert (value(after, "http_request_duration_seconds_bucket", route=ROUTE, le="1.0")
            == value(before, "http_request_duration_seconds_bucket", route=ROUTE, le="1.0"))
    assert value(after, "lynkr_active_streams") == 0


def test_configured_dir_is_emptied_and_a_dead_workers_live_gauges_go(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stale = MmapedDict(str(metrics_dir / "counter_999999.db"))  # a previous run's 1000 requests
    stale.write_value(mmap_key("http_requests", "http_requests_total", ["method", "route", "status"],
                               ["POST", ROUTE, "200"], "stale"), 1000.0, 0.0)
    stale.close()

    gateway = make_gateway(WEB_CONCURRENCY=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    sent = send_until_both_workers_served(gateway, metrics_dir)
    assert value(settled(gateway, "http_requests_total", sent, route=ROUTE), "http_requests_total", route=ROUTE) == sent

    victim = next(pid for pid in messages_by_worker(metrics_dir) if pid in worker_pids(gateway))
    assert (metrics_dir / f"gauge_livesum_{victim}.db").exists()
    os.kill(victim, signal.SIGKILL)

    assert wait_until(lambda: not (metrics_dir / f"gauge_livesum_{victim}.db").exists(), timeout=10), \
        "child_exit did not mark the killed worker dead"
    assert wait_until(lambda: len(worker_pids(gateway)) == 2 and victim not in worker_pids(gateway), timeout=10)
    assert gateway.post(message_body("One more after the kill.")).status_code == 200
    samples = settled(gateway, "http_requests_total", sent + 1, route=ROUTE)
    assert value(samples, "http_requests_total", route=ROUTE) == sent + 1  # the dead worker's counts stay
    assert value(samples, "lynkr_active_streams") == 0
    assert metrics_dir.is_dir()  # a configured directory is left in place


def test_serve_removes_the_directory_it_made(make_gateway: Callable[..., Gateway],
                                             mocked_upstream: FakeAnthropicUpstream) -> None:
    gateway = make_gateway(WEB_CONCURRENCY=2)
    metrics_dir = metrics_dir_of(gateway)
    assert gateway.post(message_body()).status_code == 200

    assert gateway.stop(signal.SIGTERM) == 0
    assert not metrics_dir.exists()


def test_without_web_concurrency_there_is_one_worker_per_usable_cpu(make_gateway: Callable[..., Gateway],
                                                                     mocked_upstream: FakeAnthropicUpstream) -> None:
    usable = sorted(os.sched_getaffinity(0))
    for cpus in ({usable[0]}, set(usable[:2])):
        os.sched_setaffinity(0, cpus)  # inherited by the gateway this thread starts
        try:
            gateway = make_gateway(WEB_CONCURRENCY=None)
        finally:
            os.sched_setaffinity(0, usable)
        quota = cgroup_cpu_quota()
        assert len(worker_pids(gateway)) == (min(len(cpus), math.ceil(quota)) if quota else len(cpus))
        assert gateway.post(message_body(f"Hello from {len(cpus)} CPUs.")).status_code == 200
