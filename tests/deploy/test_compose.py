"""``docker-compose.yml`` resolves (``docker compose config``) into a gateway wired to its services."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import load_config
from tests.deploy.drain import drain_seconds
from tests.deploy.health_probe import live_server, run_check
from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {"LYNKR_API_KEYS": "key-one", "POSTGRES_PASSWORD": "pg-secret", "SEARXNG_SECRET": "searx-secret"}


def compose_command() -> list[str]:
    """``docker compose`` when the plugin is installed, else Debian's ``docker-compose``."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) and subprocess.run([*argv, "version"], capture_output=True).returncode == 0:
            return argv
    pytest.fail("neither `docker compose` nor `docker-compose` runs: `make test` installs Debian's docker-compose")


def env_lines(settings: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in settings.items())


def compose_config(project: Path, env_file: str) -> subprocess.CompletedProcess[str]:
    """``config`` in a copy of the project with ``env_file`` as its ``.env``."""
    project.mkdir(exist_ok=True)
    shutil.copy(REPO / "docker-compose.yml", project)
    (project / ".env").write_text(env_file)
    # Only PATH: a PORT or LYNKR_API_KEYS of the test run must not leak into the interpolation.
    return subprocess.run([*compose_command(), "config"], cwd=project, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "HOME": str(project)}, timeout=60)


def resolved(project: Path, **settings: str) -> dict[str, Any]:
    """The services, with ``.env`` = ``.env.example`` plus the secrets and ``settings``."""
    done = compose_config(project, (REPO / ".env.example").read_text() + env_lines({**REQUIRED, **settings}))
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_the_gateway_is_wired_to_each_service_by_environment(tmp_path: Path) -> None:
    services = resolved(tmp_path)
    assert set(services) == {"lynkr", "postgres", "redis", "ollama", "searxng"}
    environment = services["lynkr"]["environment"]
    config = load_config(environment, dotenv=None)  # what the gateway itself makes of it
    assert config.host == "0.0.0.0"
    assert config.api_keys == ("key-one",)
    assert config.model_provider == "databricks"  # .env.example's choice wins over the file's default
    hosts = {urlsplit(url).hostname for url in (config.database_url, config.redis_url, config.ollama_endpoint,
                                                config.web_search_endpoint)}
    assert hosts == {"postgres", "redis", "ollama", "searxng"}
    assert config.database_url == "postgresql://lynkr:pg-secret@postgres:5432/lynkr"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert "SESSION_DB_PATH" not in environment  # the image's /data/lynkr.db, on the volume
    assert set(services["lynkr"]["depends_on"]) == {"postgres", "redis", "ollama", "searxng"}


def test_ollama_is_the_provider_when_the_env_file_names_none(tmp_path: Path) -> None:
    done = compose_config(tmp_path, env_lines(REQUIRED))
    assert done.returncode == 0, done.stderr
    config = load_config(yaml.safe_load(done.stdout)["services"]["lynkr"]["environment"], dotenv=None)
    assert (config.model_provider, config.ollama_endpoint) == ("ollama", "http://ollama:11434")


def test_the_gateway_gets_longer_than_its_drain_to_stop(tmp_path: Path) -> None:
    assert seconds(resolved(tmp_path)["lynkr"]["stop_grace_period"]) > drain_seconds()


def test_the_health_check_follows_port(tmp_path: Path) -> None:
    """With PORT=9123 the container listens, publishes and is probed on 9123."""
    lynkr = resolved(tmp_path, PORT="9123")["lynkr"]
    assert lynkr["environment"]["PORT"] == "9123"
    assert [port.split("/")[0] for port in lynkr["ports"]] == ["127.0.0.1:8080:9123"]
    kind, *argv = lynkr["healthcheck"]["test"]
    assert kind == "CMD"
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    with live_server() as port:
        assert run_check(argv, port, tmp_path) == 0
    assert run_check(argv, free_port(), tmp_path) != 0


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_each_secret_is_required(tmp_path: Path, missing: str) -> None:
    done = compose_config(tmp_path, env_lines({k: v for k, v in REQUIRED.items() if k != missing}))
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr
