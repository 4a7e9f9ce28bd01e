"""``make test``'s scripts: a failed service start stops the run with its reason; missing Debian
packages are named with the exact command when not root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def fake_bin(tmp_path: Path, **scripts: str) -> Path:
    """A directory of executables named after ``scripts``' keys, running their bodies."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def run(argv: list[str], bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(bin_dir)}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_a_failed_service_start_stops_the_run_before_pytest(tmp_path: Path) -> None:
    ran = tmp_path / "pytest-ran"
    bin_dir = fake_bin(tmp_path, id="echo 1000")  # not root, and no servers of one's own
    python = bin_dir / "python"
    python.write_text(f"#!/bin/sh\ntouch {ran}\n")
    python.chmod(0o755)

    done = run(["bash", "scripts/run-tests.sh", str(python)], bin_dir)

    assert done.returncode != 0
    assert "start-services.sh: starting PostgreSQL and Redis needs root" in done.stderr
    assert not ran.exists()


def test_servers_of_one_s_own_are_used_as_given(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "LYNKR_TEST_DATABASE_URL": "postgresql://me@db.internal/t",
           "LYNKR_TEST_REDIS_URL": "redis://cache.internal/3"}
    done = subprocess.run(["bash", "scripts/start-services.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["export LYNKR_TEST_DATABASE_URL=postgresql://me@db.internal/t",
                                        "export LYNKR_TEST_REDIS_URL=redis://cache.internal/3"]


def test_without_root_missing_packages_are_named_with_the_command(tmp_path: Path) -> None:
    real_python = shutil.which("python3")
    bin_dir = fake_bin(tmp_path, id="echo 1000",  # this python3 has no venv module
                       python3=f'case "$2" in *venv*) exit 1;; esac; exec {real_python} "$@"')

    done = run(["bash", "scripts/prerequisites.sh", "runtime"], bin_dir)

    assert done.returncode == 1
    assert done.stderr.strip() == ("make serve needs these Debian packages: "
                                   "sudo apt-get install -y --no-install-recommends python3-venv")


def test_make_serve_installs_the_runtime_only(tmp_path: Path) -> None:
    planned = subprocess.run(["make", "-n", "serve", f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    installs = [line for line in planned.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e '.[postgres,redis]'"]
    assert "bash scripts/prerequisites.sh runtime" in planned.splitlines()


@pytest.mark.postgres
@pytest.mark.redis
def test_each_run_gets_its_own_database_and_redis_database_and_gives_them_back() -> None:
    if os.geteuid() != 0:
        pytest.skip("start-services.sh starts Debian's clusters, which needs root")
    env = {"PATH": os.environ["PATH"]}

    def start() -> dict[str, str]:
        done = subprocess.run(["bash", "scripts/start-services.sh", "--per-run"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return dict(word.split("=", 1) for line in done.stdout.splitlines() for word in line.split()[1:])

    first, second = start(), start()
    try:
        assert first["LYNKR_TEST_DATABASE_URL"] != second["LYNKR_TEST_DATABASE_URL"]
        assert first["LYNKR_TEST_REDIS_URL"] != second["LYNKR_TEST_REDIS_URL"]
        assert exists(first["LYNKR_TEST_RUN_DATABASE"])
    finally:
        for run in (first, second):
            subprocess.run(["bash", "scripts/stop-services.sh"], cwd=REPO, env={**env, **run}, check=True, timeout=120)
    assert not exists(first["LYNKR_TEST_RUN_DATABASE"])
    claim = subprocess.run(["redis-cli", "-n", first["LYNKR_TEST_RUN_REDIS_DB"], "GET", "lynkr:test-run"],
                           capture_output=True, text=True, check=True).stdout
    assert claim.strip() == ""


def exists(database: str) -> bool:
    listed = subprocess.run(["su", "postgres", "-c", "psql -Atc 'SELECT datname FROM pg_database'"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    return database in listed.split()
