"""``deploy/k8s/``: valid Kubernetes objects (kubernetes-validate) that fit together and fit the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from flask.testing import FlaskClient

from app.config import Config, load_config

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def objects() -> dict[str, dict[str, Any]]:
    """Every object in deploy/k8s, by kind."""
    found = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in found}
    assert len(by_kind) == len(found), "one object of each kind"
    return by_kind


def container() -> dict[str, Any]:
    [lynkr] = objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return lynkr


@pytest.mark.parametrize("kind", ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"])
def test_each_object_is_valid_against_the_kubernetes_schema(kind: str) -> None:
    kubernetes_validate.validate(objects()[kind], kubernetes_validate.latest_version(), strict=True)


def test_the_service_and_the_budget_select_the_deployment_s_pods() -> None:
    found = objects()
    labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert found["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert found["Service"]["spec"]["selector"].items() <= labels.items()
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] < found["Deployment"]["spec"]["replicas"]
    port_names = {port["name"] for port in container()["ports"]}
    assert {port["targetPort"] for port in found["Service"]["spec"]["ports"]} <= port_names


def test_the_pod_reads_the_config_map_and_secret_and_they_make_a_valid_config() -> None:
    found = objects()
    refs = {next(iter(source)): next(iter(source.values()))["name"] for source in container()["envFrom"]}
    assert refs == {"configMapRef": found["ConfigMap"]["metadata"]["name"],
                    "secretRef": found["Secret"]["metadata"]["name"]}
    # HOST=0.0.0.0 comes from the image; a public bind is refused without API keys.
    config = load_config({**found["ConfigMap"]["data"], **found["Secret"]["stringData"], "HOST": "0.0.0.0"},
                         dotenv=None)
    assert config.api_keys
    assert config.database_url.startswith("postgresql://")


def test_termination_waits_for_pre_stop_and_the_drain() -> None:
    spec = objects()["Deployment"]["spec"]["template"]["spec"]
    settings = load_config(objects()["ConfigMap"]["data"], dotenv=None)
    assert container()["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pre_stop_s = float(container()["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pre_stop_s * 1000 >= Config().prestop_delay_ms  # the hook takes over the gateway's own delay
    drain_s = pre_stop_s + (settings.prestop_delay_ms + settings.graceful_shutdown_timeout_ms) / 1000
    assert spec["terminationGracePeriodSeconds"] > drain_s


def test_the_pod_runs_as_the_image_s_non_root_user_on_a_read_only_root() -> None:
    pod = objects()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert f"--uid {pod['runAsUser']}" in (K8S.parents[1] / "Dockerfile").read_text()
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {mount["mountPath"] for mount in container()["volumeMounts"]} == {"/tmp", "/data"}


def test_the_probes_hit_routes_the_gateway_answers(client: FlaskClient) -> None:
    lynkr = container()
    live = lynkr["livenessProbe"]["httpGet"]["path"]
    ready = lynkr["readinessProbe"]["httpGet"]["path"]
    assert (live, ready) == ("/health/live", "/health/ready")
    assert client.get(live).status_code == 200
    answer = client.get(ready)
    assert answer.status_code == 200
    assert answer.get_json()["checks"]["draining"] == {"ok": True}
