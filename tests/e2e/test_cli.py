"""The ``lynkr`` command as users run it: ``check``, ``migrate``, and ``flask --app app``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "PORT": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env={**base, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def check_report(stdout: str) -> tuple[dict, dict]:
    decoder = json.JSONDecoder()
    config, end = decoder.raw_decode(stdout)
    report, _ = decoder.raw_decode(stdout[end:].lstrip())
    return config["config"], report


def test_check_names_missing_settings_and_fails(tmp_path: Path) -> None:
    result = run(["-m", "app", "check"], tmp_path, DATABRICKS_API_KEY="dapi-secret-value-9876")
    assert result.returncode == 1
    config, report = check_report(result.stdout)
    assert config["DATABRICKS_API_KEY"] == "****9876"
    assert "dapi-secret-value" not in result.stdout
    assert report["provider"] == {"ok": False, "provider": "databricks",
                                  "error": "not configured: set DATABRICKS_API_BASE",
                                  "context_window": "200000 tokens"}
    assert report["service"]["running"] is False


def test_check_probes_a_reachable_provider(tmp_path: Path) -> None:
    with FakeAnthropicUpstream() as upstream:
        result = run(["-m", "app", "check"], tmp_path, DATABRICKS_API_BASE=upstream.url,
                     DATABRICKS_ENDPOINT_PATH="/v1/messages", DATABRICKS_API_KEY="dapi-test-1234")
        [probe] = upstream.wait_for_requests(1)
    assert result.returncode == 0, result.stderr
    _, report = check_report(result.stdout)
    assert report["provider"]["ok"] is True
    assert report["provider"]["model"] == "databricks-claude-sonnet-4-5"
    assert report["provider"]["context_window"] == "200000 tokens"
    assert probe.body["max_tokens"] == 1


def test_check_reports_a_bad_value_in_one_sentence(tmp_path: Path) -> None:
    result = run(["-m", "app", "check"], tmp_path, PORT="eighty")
    assert result.returncode == 2
    assert result.stderr.startswith("lynkr: PORT='eighty' is not valid")
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_to_start_with_a_broken_settings_file(tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text("[{not json")
    missing = run(["-m", "app", "serve"], tmp_path, HOST_PROFILES=str(tmp_path / "missing.json"))
    broken = run(["-m", "app", "serve"], tmp_path, ROUTING_RULES=str(tmp_path / "rules.json"))
    for result, variable in ((missing, "HOST_PROFILES"), (broken, "ROUTING_RULES")):
        assert result.returncode == 2
        lines = [line for line in result.stderr.splitlines() if line.startswith("lynkr: ")]
        assert len(lines) == 1
        assert lines[0].startswith(f"lynkr: {variable}=")
        assert "Listening at" not in result.stderr


def test_check_and_migrate_refuse_a_broken_settings_file_but_keys_do_not_need_it(tmp_path: Path) -> None:
    (tmp_path / "caps.json").write_text('{"my-model": {"context_windw": 8000}}')
    broken = {"MODEL_CAPABILITIES": str(tmp_path / "caps.json")}
    for command in (["check"], ["migrate"]):
        result = run(["-m", "app", *command], tmp_path, **broken)
        assert result.returncode == 2, command
        assert result.stderr.startswith("lynkr: MODEL_CAPABILITIES"), result.stderr
    # Keys live in the database; a capabilities typo must not stop managing them.
    listed = run(["-m", "app", "keys", "list"], tmp_path, **broken)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_migrate_creates_the_tables(tmp_path: Path) -> None:
    result = run(["-m", "app", "migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("applied ")
    assert ": [1" in result.stdout
    tables = {row[0] for row in sqlite3.connect(tmp_path / "data" / "lynkr.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "turns", "client_requests", "upstream_attempts", "schema_migrations"} <= tables
    assert run(["-m", "app", "migrate"], tmp_path).stdout.strip() == "applied 0 migration(s)"


def test_flask_cli_finds_the_app_factory(tmp_path: Path) -> None:
    result = run(["-m", "flask", "--app", "app", "routes"], tmp_path, PYTHONPATH=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert "/v1/messages" in result.stdout
    assert (tmp_path / "data" / "lynkr.db").is_file()
