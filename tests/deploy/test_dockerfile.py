"""The Dockerfile's health check follows PORT, and ``.env.example`` as ``--env-file`` keeps the image's binding."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.deploy.health_probe import live_server, run_check
from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def dockerfile_instruction(name: str) -> str:
    """The arguments of the one ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    [line] = [line for line in joined.splitlines() if line.startswith(name + " ")]
    return line[len(name) + 1:]


def image_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(dockerfile_instruction("ENV")))


def env_file(path: Path) -> dict[str, str]:
    """What ``docker run --env-file`` reads: ``NAME=value`` lines; ``#`` lines are comments."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_health_check_probes_the_port_the_container_listens_on(tmp_path: Path) -> None:
    options, command = dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)
    assert "--interval" in options
    argv = ["sh", "-c", command]
    with live_server() as port:
        assert run_check(argv, port, tmp_path) == 0
    assert run_check(argv, free_port(), tmp_path) != 0


def test_env_example_as_an_env_file_keeps_the_image_s_address_and_database() -> None:
    image = image_env()
    assert image["HOST"] == "0.0.0.0"
    overridden = {name: value for name, value in env_file(REPO / ".env.example").items()
                  if name in image and value != image[name]}
    assert overridden == {}

