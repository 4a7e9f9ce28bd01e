"""``lynkr env``, ``lynkr claude`` and ``lynkr init`` run as a user runs them (``python -m app …``).

``lynkr claude`` is checked with a fake ``claude`` on PATH that records its arguments and
environment (against a running gateway, and with none running, when it must start one), and
with the pinned Claude Code CLI for one prompt. ``lynkr init`` is driven through its stdin
against a fake Ollama over HTTP.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.cli_helpers import CLAUDE
from tests.e2e.conftest import REPO, free_port
from tests.e2e.helpers import Gateway, wait_until
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.ollama_upstream import FakeOllama

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "sk-e2e-onboarding-0123456789"
FAKE_CLAUDE = textwrap.dedent("""\
    #!{python}
    import json, os, sys, urllib.request
    try:
        status = urllib.request.urlopen(os.environ["ANTHROPIC_BASE_URL"] + "/health/live", timeout=5).status
    except OSError as exc:
        status = str(exc)
    with open({record!r}, "w") as out:
        json.dump({{"args": sys.argv[1:], "env": dict(os.environ), "gateway": status}}, out)
    sys.exit(3)
    """)


def lynkr(tmp: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "",
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` in ``tmp`` with a minimal environment plus ``env``."""
    (tmp / "home").mkdir(exist_ok=True)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp / "home"), "TMPDIR": str(tmp),
            "PYTHONPATH": str(REPO), "SESSION_DB_PATH": str(tmp / "lynkr.db"), "PORT": str(free_port())}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=tmp, env={**base, **(env or {})},
                          input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


def fake_claude(tmp: Path) -> tuple[Path, Path]:
    """A ``claude`` that records its arguments, environment and whether the gateway answered."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    record = tmp / "claude-run.json"
    script = bin_dir / "claude"
    script.write_text(FAKE_CLAUDE.format(python=sys.executable, record=str(record)))
    script.chmod(0o755)
    return bin_dir, record


def test_env_prints_the_exports(tmp_path: Path) -> None:
    result = lynkr(tmp_path, "env", env={"MODEL_PROVIDER": "ollama", "OLLAMA_MODEL": "qwen2.5-coder:7b",
                                         "PORT": "8765", "LYNKR_API_KEYS": KEY})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "unset ANTHROPIC_AUTH_TOKEN\n"
        "export ANTHROPIC_BASE_URL=http://127.0.0.1:8765\n"
        f"export ANTHROPIC_API_KEY={KEY}\n"
        "export CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1\n"
        "export CLAUDE_CODE_AUTO_COMPACT_WINDOW=32768\n")


def test_env_without_a_key_says_it_sends_a_placeholder(tmp_path: Path) -> None:
    result = lynkr(tmp_path, "env", env={"MODEL_PROVIDER": "databricks", "PORT": "9000"})
    assert "export ANTHROPIC_API_KEY=sk-lynkr-local\n" in result.stdout
    assert result.stderr == ("lynkr: no LYNKR_API_KEYS / LYNKR_ADMIN_KEYS: sending a placeholder key; if your keys "
                             "are kept in the database (lynkr keys), pass --key KEY\n")


def test_env_for_a_claude_provider_sets_no_compact_window(tmp_path: Path) -> None:
    result = lynkr(tmp_path, "env", "--key", "sk-given", env={"MODEL_PROVIDER": "databricks", "PORT": "9000"})
    assert result.stdout == (
        "unset ANTHROPIC_AUTH_TOKEN\n"
        "export ANTHROPIC_BASE_URL=http://127.0.0.1:9000\n"
        "export ANTHROPIC_API_KEY=sk-given\n"
        "export CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1\n")


def test_claude_runs_against_a_running_gateway_with_its_arguments(
        tmp_path: Path, make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(LYNKR_API_KEYS=KEY)
    bin_dir, record = fake_claude(tmp_path)
    result = lynkr(tmp_path, "claude", "-p", "hello world", "--model", "opus", env={
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "PORT": str(gateway.port), "LYNKR_API_KEYS": KEY,
        "ANTHROPIC_AUTH_TOKEN": "users-own-token", "MODEL_PROVIDER": "databricks"})
    assert result.returncode == 3  # claude's own exit code: lynkr became claude
    assert "starting" not in result.stderr
    run = json.loads(record.read_text())
    assert run["args"] == ["-p", "hello world", "--model", "opus"]
    assert run["gateway"] == 200
    env = run["env"]
    assert env["ANTHROPIC_BASE_URL"] == gateway.url
    assert env["ANTHROPIC_API_KEY"] == KEY
    assert env["CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK"] == "1"
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW" not in env
    assert "ANTHROPIC_AUTH_TOKEN" not in env


def test_claude_starts_the_gateway_when_none_answers(tmp_path: Path) -> None:
    bin_dir, record = fake_claude(tmp_path)
    port = free_port()
    result = lynkr(tmp_path, "claude", "--key", "sk-any", "--version", env={
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "PORT": str(port), "MODEL_PROVIDER": "ollama",
        "OLLAMA_ENDPOINT": "http://127.0.0.1:9", "WEB_CONCURRENCY": "1", "LYNKR_PRESTOP_DELAY_MS": "0"})
    started = re.search(r"gateway running \(pid (\d+), log (\S+)\); stop it with: kill \d+", result.stderr)
    assert started, result.stderr
    pid = int(started.group(1))
    try:
        assert result.returncode == 3, result.stderr
        run = json.loads(record.read_text())
        assert run["args"] == ["--version"]
        assert run["gateway"] == 200
        assert run["env"]["ANTHROPIC_API_KEY"] == "sk-any"
        assert run["env"]["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "32768"
        assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200
    finally:
        os.killpg(pid, signal.SIGTERM)
        assert wait_until(lambda: not _alive(pid), timeout=20, interval=0.1)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.cli
def test_the_pinned_claude_cli_answers_one_prompt_through_lynkr_claude(
        tmp_path: Path, make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream) -> None:
    if not os.access(CLAUDE, os.X_OK):
        pytest.fail(f"Claude Code CLI not found at {CLAUDE}: run `npm ci` in tests/e2e")
    gateway = make_gateway(LYNKR_API_KEYS=KEY)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    result = lynkr(tmp_path, "claude", "-p", "Say hello.", "--output-format", "json", timeout=180, env={
        "PATH": f"{CLAUDE.parent}:{os.environ['PATH']}", "PORT": str(gateway.port), "LYNKR_API_KEYS": KEY,
        "MODEL_PROVIDER": "databricks", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1", "IS_SANDBOX": "1"})
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    answer = json.loads(result.stdout)
    assert answer["is_error"] is False
    assert answer["result"]
    assert mocked_upstream.message_requests()  # the answer came through the gateway


# -- lynkr init ---------------------------------------------------------------------------------------------


@pytest.fixture
def ollama() -> Any:
    with FakeOllama(models=["qwen2.5-coder:7b", "gemma3:4b"]) as fake:
        fake.capabilities_by_model["gemma3:4b"] = ["completion"]
        yield fake


def test_init_asks_checks_ollama_writes_env_and_probes(tmp_path: Path, ollama: FakeOllama) -> None:
    result = lynkr(tmp_path, "init", stdin=f"ollama\n{ollama.url}\n\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"Ollama 0.12.0 is answering at {ollama.url}\n"
            "  qwen2.5-coder:7b: takes tools\n"
            "  gemma3:4b: no tools\n") in result.stdout
    assert (tmp_path / ".env").read_text() == (
        "# Written by `lynkr init`; every setting is listed in .env.example.\n"
        "MODEL_PROVIDER=ollama\n"
        f"OLLAMA_ENDPOINT={ollama.url}\n"
        "OLLAMA_MODEL=qwen2.5-coder:7b\n")
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert sorted(r.body["model"] for r in ollama.show_requests()) == ["gemma3:4b", "qwen2.5-coder:7b"]
    assert len(ollama.chat_requests()) == 1  # the probe `lynkr check` makes
    assert '"ok": true' in result.stdout
    assert "checking: 1/2 provider ollama\n" in result.stderr  # progress off a terminal: plain lines


def test_migrate_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    main, child = pty.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
           "SESSION_DB_PATH": str(tmp_path / "fresh.db"), "LOG_LEVEL": "error"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "migrate"], cwd=tmp_path, env=env, stdin=child,
                            stdout=child, stderr=child)
    os.close(child)
    output = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    assert proc.wait(timeout=60) == 0
    os.close(main)
    text = output.decode()
    versions = len(list((REPO / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py")))
    assert f"\r\x1b[2Kmigrating [{'#' * 28}] {versions}/{versions} " in text
    assert f"applied {versions} migration(s)" in text


def test_init_warns_about_a_model_without_tools_and_names_the_pull_for_a_missing_one(
        tmp_path: Path, ollama: FakeOllama) -> None:
    chose_gemma = lynkr(tmp_path, "init", stdin=f"ollama\n{ollama.url}\ngemma3:4b\n")
    assert ("warning: gemma3:4b does not take tools; Claude Code needs a model that does (qwen2.5-coder:7b)"
            in chose_gemma.stdout)
    (tmp_path / ".env").unlink()
    missing = lynkr(tmp_path, "init", stdin=f"ollama\n{ollama.url}\nqwen3:14b\n")
    assert "qwen3:14b is not pulled yet; run:\n    ollama pull qwen3:14b\n" in missing.stdout
    assert "OLLAMA_MODEL=qwen3:14b\n" in (tmp_path / ".env").read_text()


def test_init_without_ollama_prints_the_install_commands(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = lynkr(tmp_path, "init", "--provider", "ollama", "--yes", env={"OLLAMA_ENDPOINT": endpoint})
    assert result.returncode == 1  # the probe fails: nothing answers
    assert (f"Ollama is not answering at {endpoint}. Install and start it, then pull a model:\n"
            "    curl -fsSL https://ollama.com/install.sh | sh\n"
            "    ollama serve\n"
            "    ollama pull qwen2.5-coder:7b\n") in result.stdout


def test_init_never_overwrites_env_without_a_yes(tmp_path: Path, ollama: FakeOllama) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MODEL_PROVIDER=ollama\nLOG_LEVEL=debug\n")
    kept = lynkr(tmp_path, "init", "--provider", "ollama", "--yes", env={"OLLAMA_ENDPOINT": ollama.url})
    assert ".env left as it is" in kept.stdout
    assert env_file.read_text() == "MODEL_PROVIDER=ollama\nLOG_LEVEL=debug\n"
    declined = lynkr(tmp_path, "init", stdin=f"ollama\n{ollama.url}\n\nn\n")
    assert env_file.read_text() == "MODEL_PROVIDER=ollama\nLOG_LEVEL=debug\n"
    assert declined.returncode == 1  # the kept .env names no endpoint: the default one does not answer
    accepted = lynkr(tmp_path, "init", stdin=f"ollama\n{ollama.url}\n\ny\n")
    assert accepted.returncode == 0
    assert "OLLAMA_MODEL=qwen2.5-coder:7b\n" in env_file.read_text()
    assert (tmp_path / ".env.bak").read_text() == "MODEL_PROVIDER=ollama\nLOG_LEVEL=debug\n"


def test_init_asks_another_provider_for_its_key(tmp_path: Path, ollama: FakeOllama) -> None:
    endpoint = ollama.url + "/v1/chat/completions"  # the fake speaks OpenAI's chat format too
    result = lynkr(tmp_path, "init", stdin="nope\nopenrouter\nsk-or-test-0123456789\n",
                   env={"OPENROUTER_ENDPOINT": endpoint})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  'nope' is not a provider\n" in result.stdout
    assert "MODEL_PROVIDER=openrouter\nOPENROUTER_API_KEY=sk-or-test-0123456789\n" in (tmp_path / ".env").read_text()
    assert "sk-or-test-0123456789" not in result.stdout  # lynkr check masks it
    assert ollama.requests_to("/v1/chat/completions")[0].headers["authorization"] == "Bearer sk-or-test-0123456789"
