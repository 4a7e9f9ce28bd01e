"""Health probes: live always, ready from its checks, deep readiness probing the provider once per window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import Flask

from app.blueprints.health import DeepProbe
from app.resilience.drain import DrainFlag
from tests.conftest import DATABRICKS_TOKEN, DATABRICKS_URL

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "databricks-claude-sonnet-4-5",
           "content": [{"type": "text", "text": "p"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}


@pytest.fixture
def built(make_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        app = make_app(memory_threshold=0.999, **config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["lynkr"].recorder.flush()


@pytest.mark.parametrize("path", ["/health", "/health/live"])
def test_live(built: Callable[..., Flask], path: str) -> None:
    response = built().test_client().get(path)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_with_every_check(built: Callable[..., Flask]) -> None:
    response = built().test_client().get("/health/ready")
    body = response.get_json()
    assert (response.status_code, body["status"]) == (200, "ok")
    assert set(body["checks"]) == {"database", "memory", "draining", "provider"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["draining"] == {"ok": True}
    assert body["checks"]["provider"] == {"ok": True, "name": "databricks"}


def test_an_unconfigured_provider_is_not_ready(built: Callable[..., Flask]) -> None:
    response = built(model_provider="openai").test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["checks"]["provider"] == {
        "ok": False, "name": "openai", "missing": ["OPENAI_API_KEY"], "message": "set OPENAI_API_KEY"}


def test_a_draining_worker_is_not_ready(built: Callable[..., Flask], drain: DrainFlag) -> None:
    app = built()
    drain.start()
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["draining"] == {"ok": False}


@responses.activate
def test_deep_readiness_probes_the_provider_once_per_window(built: Callable[..., Flask]) -> None:
    responses.post(DATABRICKS_URL, json=MESSAGE)
    client = built(health_deep_cache_ms=60_000).test_client()
    first = client.get("/health/ready?deep=true").get_json()["checks"]["provider"]
    assert first["ok"] is True
    assert (first["name"], first["provider"], first["model"], first["probed_ms_ago"]) == (
        "databricks", "databricks", "databricks-claude-sonnet-4-5", 0)
    second = client.get("/health/ready?deep=1").get_json()["checks"]["provider"]
    assert second["latency_ms"] == first["latency_ms"]
    assert len(responses.calls) == 1
    assert client.get("/health/ready?deep=no").get_json()["checks"]["provider"] == {"ok": True,
                                                                                    "name": "databricks"}


@responses.activate
def test_deep_readiness_needs_a_key_when_keys_are_set(built: Callable[..., Flask]) -> None:
    responses.post(DATABRICKS_URL, json=MESSAGE)
    client = built(api_keys=("sk-health",)).test_client()
    refused = client.get("/health/ready?deep=true")
    assert (refused.status_code, refused.get_json()["error"]["type"]) == (401, "authentication_error")
    assert len(responses.calls) == 0
    assert client.get("/health/ready").status_code == 200
    assert client.get("/health/ready?deep=true", headers={"x-api-key": "sk-health"}).status_code == 200


class Provider:
    def __init__(self) -> None:
        self.probes = 0

    def probe(self) -> dict[str, Any]:
        self.probes += 1
        return {"ok": False, "error": f"401 for token {DATABRICKS_TOKEN}", "n": self.probes}


def test_deep_probe_reuses_its_answer_within_the_ttl_and_masks_credentials() -> None:
    now = [100.0]
    probe = DeepProbe(5.0, clock=lambda: now[0])
    provider = Provider()
    first = probe.result(provider)  # type: ignore[arg-type]
    assert first == {"ok": False, "error": "401 for token [REDACTED]", "n": 1, "probed_ms_ago": 0}
    now[0] += 2.5
    assert probe.result(provider) == {**first, "probed_ms_ago": 2500}  # type: ignore[arg-type]
    now[0] += 2.5
    assert probe.result(provider)["n"] == 2  # type: ignore[arg-type]
    assert provider.probes == 2
