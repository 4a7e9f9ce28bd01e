"""Open doors with keys set: metrics and deep readiness need a key; deep readiness probes the upstream
at most once per ``HEALTH_DEEP_CACHE_MS``; only real loopback addresses count as loopback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses
from flask import Flask

from app.config import Config
from tests.conftest import DATABRICKS_URL

KEY = "sk-lynkr-door-test-0001"
BEARER = {"Authorization": f"Bearer {KEY}"}
PROBE_ANSWER = {"id": "msg_p", "type": "message", "role": "assistant", "model": "m", "content": [],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}


@pytest.mark.parametrize("path", ["/metrics/prometheus", "/metrics/observability", "/metrics/circuit-breakers"])
def test_metrics_need_a_key_when_keys_are_set(make_app: Callable[..., Flask], path: str) -> None:
    client = make_app(api_keys=(KEY,)).test_client()

    refused = client.get(path)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["type"] == "authentication_error"
    assert client.get(path, headers={"Authorization": "Bearer wrong-key-000"}).status_code == 401
    assert client.get(path, headers=BEARER).status_code == 200


def test_metrics_public_opens_them_on_purpose(make_app: Callable[..., Flask]) -> None:
    client = make_app(api_keys=(KEY,), metrics_public=True).test_client()
    assert client.get("/metrics/observability").status_code == 200


def test_metrics_stay_open_without_keys(make_app: Callable[..., Flask]) -> None:
    assert make_app().test_client().get("/metrics/observability").status_code == 200


def test_deep_readiness_needs_a_key_and_probes_once_per_window(make_app: Callable[..., Flask]) -> None:
    client = make_app(api_keys=(KEY,), health_deep_cache_ms=60_000).test_client()
    with responses.RequestsMock() as mocked:
        probe = mocked.add(responses.POST, DATABRICKS_URL, json=PROBE_ANSWER)
        refused = client.get("/health/ready?deep=true")
        shallow = client.get("/health/ready")
        first = client.get("/health/ready?deep=true", headers=BEARER)
        second = client.get("/health/ready?deep=true", headers=BEARER)

    assert refused.status_code == 401
    assert shallow.status_code == 200  # orchestrators' readiness probes need no key
    assert first.status_code == second.status_code == 200
    assert probe.call_count == 1
    assert first.get_json()["checks"]["provider"]["ok"] is True
    assert first.get_json()["checks"]["provider"]["probed_ms_ago"] == 0
    assert second.get_json()["checks"]["provider"]["ok"] is True


def test_deep_readiness_probes_again_after_the_window(make_app: Callable[..., Flask]) -> None:
    client = make_app(health_deep_cache_ms=0).test_client()
    with responses.RequestsMock() as mocked:
        probe = mocked.add(responses.POST, DATABRICKS_URL, json=PROBE_ANSWER)
        client.get("/health/ready?deep=true")
        client.get("/health/ready?deep=true")
    assert probe.call_count == 2


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("127.evil.example", False), ("0.0.0.0", False), ("192.168.1.10", False), ("localhost.evil.example", False),
])
def test_only_real_loopback_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert Config(host=host).is_loopback is loopback
