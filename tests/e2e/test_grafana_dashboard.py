"""``deploy/grafana/lynkr.json`` queries only series a real ``lynkr serve`` exposes.

A gateway gets traffic that touches every family the dashboard charts (success, a stream, an
error, a fallback from a refused Ollama, a retried 500, a prompt-cache lookup, a shed request); then
every metric name and grouping label in every panel's PromQL must appear in its scrape.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body, read_sse
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "lynkr.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset"}


def queries() -> list[str]:
    """Every target expression of every panel."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The series an expression reads: identifiers that are not functions, keywords or labels."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)  # matchers and ranges
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    return {name for name in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", bare)
            if name not in PROMQL_WORDS and not re.fullmatch(r"\d.*", name)}


def grouping_labels(expr: str) -> set[str]:
    """Labels named in ``by (...)`` clauses and ``{...}`` matchers (``le`` is every histogram's)."""
    labels = {label.strip() for group in re.findall(r"\bby\s*\(([^)]*)\)", expr) for label in group.split(",")}
    labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", " ".join(re.findall(r"\{([^}]*)\}", expr))))
    return labels - {"", "le"}


def test_the_expression_reader() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, provider) (rate(lynkr_x_bucket{route!~"/h.*"}[5m]))) '
            "/ sum(rate(http_requests_total[$__rate_interval])) * 3600")
    assert metric_names(expr) == {"lynkr_x_bucket", "http_requests_total"}
    assert grouping_labels(expr) == {"provider", "route"}


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def post(gateway: Gateway, body: dict[str, object], headers: dict[str, str] | None = None) -> requests.Response:
    response = gateway.post(body, headers=headers, stream=bool(body.get("stream")))
    if body.get("stream"):
        read_sse(response)
    return response


def scrape(gateway: Gateway) -> dict[str, set[str]]:
    """Sample name → the label names it carries, from one scrape."""
    text = requests.get(gateway.url + "/metrics/prometheus", timeout=10).text
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_every_panel_queries_series_the_gateway_exposes(make_gateway: Callable[..., Gateway],
                                                        mocked_upstream: FakeAnthropicUpstream,
                                                        refused_port: int) -> None:
    gateway = make_gateway(PREFER_OLLAMA="true", FALLBACK_ENABLED="true", FALLBACK_PROVIDER="databricks",
                           OLLAMA_ENDPOINT=f"http://127.0.0.1:{refused_port}", API_RETRY_MAX_RETRIES=1,
                           API_RETRY_INITIAL_DELAY=10, API_RETRY_MAX_DELAY=20, PROMPT_CACHE_ENABLED="true",
                           LOAD_SHEDDING_MAX_QUEUE_MS=1000)
    # Ollama refused → fallback to Databricks, whose 500 is retried; the prompt cache is looked up (a miss).
    mocked_upstream.script(ErrorReply(500))
    assert post(gateway, message_body("cache me")).headers["X-Lynkr-Route-Reason"] == "fallback"
    assert post(gateway, message_body("stream", stream=True)).status_code == 200
    assert post(gateway, {"model": "claude-sonnet-4-5"}).status_code == 400
    queued = {**ANTHROPIC_HEADERS, "X-Request-Start": f"t={time.time() - 30:.3f}"}
    assert post(gateway, message_body("late"), queued).status_code == 503

    samples = scrape(gateway)
    for expr in queries():
        names = metric_names(expr)
        assert names, expr
        for name in names:
            assert name in samples, f"{name} (in {expr!r}) is not in /metrics/prometheus"
            assert grouping_labels(expr) <= samples[name] | {"le"}, (expr, samples[name])
