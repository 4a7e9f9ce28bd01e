"""``deploy/lynkr.service`` passes ``systemd-analyze verify`` and allows for the drain."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.drain import drain_seconds

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "lynkr.service"
EXEC = "/opt/lynkr/.venv/bin/lynkr"


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verbatim but for ExecStart, which verify requires to exist: a stub stands in for the venv."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    stub = tmp_path / "lynkr"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    text = UNIT.read_text()
    assert text.count(EXEC) == 1
    unit = tmp_path / "lynkr.service"
    unit.write_text(text.replace(EXEC, str(stub)))

    verified = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                              timeout=60)

    assert (verified.returncode, verified.stderr) == (0, "")


def test_the_unit_waits_out_the_drain_and_signals_only_the_master() -> None:
    service = service_section()
    assert int(service["TimeoutStopSec"]) > drain_seconds()
    assert service["KillMode"] == "mixed"
    assert service["ExecStart"] == f"{EXEC} serve"


def test_every_writable_path_is_optional_or_created_by_systemd() -> None:
    """A missing ReadWritePaths= entry without "-" keeps the unit from starting."""
    service = service_section()
    assert service["ProtectSystem"] == "strict"
    paths = service["ReadWritePaths"].split()
    assert paths
    assert all(path.startswith("-") for path in paths)
    assert service["StateDirectory"] == "lynkr"
    assert service["Environment"] == "SESSION_DB_PATH=/var/lib/lynkr/lynkr.db"
