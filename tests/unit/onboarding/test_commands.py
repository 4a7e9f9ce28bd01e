"""``lynkr init``, ``lynkr env`` and ``lynkr claude`` as ``app.cli`` dispatches them: arguments, output, exit codes."""

from __future__ import annotations

import argparse
import io
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.onboarding import claude
from app.onboarding import init as init_module
from app.onboarding.commands import COMMANDS, add_parsers, claude_key, run
from app.settings import SETTINGS

EXPORTS = ("unset ANTHROPIC_AUTH_TOKEN\nexport ANTHROPIC_BASE_URL=http://127.0.0.1:{port}\n"
           "export ANTHROPIC_API_KEY={key}\nexport CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1\n")
PLACEHOLDER_WARNING = ("lynkr: no LYNKR_API_KEYS / LYNKR_ADMIN_KEYS: sending a placeholder key; if your keys are "
                       "kept in the database (lynkr keys), pass --key KEY\n")


def parse(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lynkr")
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(words))


def never_checked(config: Config) -> int:
    raise AssertionError("only init probes the provider")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_three_subcommands_and_their_options() -> None:
    parser = argparse.ArgumentParser(prog="lynkr")
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub)
    assert tuple(sub.choices) == COMMANDS == ("init", "env", "claude")
    assert vars(parse("init")) == {"command": "init", "provider": None, "yes": False, "force": False}
    assert vars(parse("init", "--provider", "ollama", "--yes", "--force")) == {
        "command": "init", "provider": "ollama", "yes": True, "force": True}
    assert vars(parse("env", "--key", "sk-1")) == {"command": "env", "key": "sk-1"}
    assert vars(parse("claude")) == {"command": "claude"}


@pytest.mark.parametrize(("words", "expected"), [
    (["--key", "sk-1", "-p", "hi"], ("sk-1", ["-p", "hi"])),
    (["--key=sk-2", "--model", "x"], ("sk-2", ["--model", "x"])),
    (["-p", "--key", "sk-3"], (None, ["-p", "--key", "sk-3"])),
    (["--key"], (None, ["--key"])),
    ([], (None, [])),
])
def test_only_a_leading_key_option_belongs_to_lynkr(words: list[str], expected: tuple[str | None, list[str]]) -> None:
    assert claude_key(words) == expected


# --- lynkr env -------------------------------------------------------------------------------------------------


def test_env_prints_the_exports_with_the_first_configured_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Config(port=8123, api_keys=("sk-one", "sk-two")), parse("env"), [], never_checked) == 0
    assert capsys.readouterr() == (EXPORTS.format(port=8123, key="sk-one"), "")


def test_env_key_option_wins(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Config(port=8123, api_keys=("sk-one",)), parse("env", "--key", "sk-mine"), [], never_checked) == 0
    assert capsys.readouterr().out == EXPORTS.format(port=8123, key="sk-mine")


def test_env_without_keys_sends_a_placeholder_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Config(port=8123), parse("env"), [], never_checked) == 0
    assert capsys.readouterr() == (EXPORTS.format(port=8123, key=claude.OPEN_MODE_KEY), PLACEHOLDER_WARNING)


# --- lynkr init ------------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory as the working directory, with no setting in the environment."""
    monkeypatch.chdir(tmp_path)
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    return tmp_path


@pytest.fixture
def checked() -> tuple[list[Config], Callable[[Config], int]]:
    seen: list[Config] = []

    def check(config: Config) -> int:
        seen.append(config)
        return 3

    return seen, check


def test_init_yes_writes_env_then_returns_the_check_of_the_reloaded_settings(
        project: Path, checked: tuple[list[Config], Callable[[Config], int]],
        capsys: pytest.CaptureFixture[str]) -> None:
    seen, check = checked
    assert run(Config(), parse("init", "--provider", "openrouter", "--yes"), [], check) == 3
    assert (project / ".env").read_text().endswith("MODEL_PROVIDER=openrouter\n")
    assert [config.model_provider for config in seen] == ["openrouter"]
    assert "wrote .env\n" in capsys.readouterr().out


@pytest.mark.parametrize(("force", "kept"), [(False, True), (True, False)])
def test_init_yes_overwrites_an_existing_env_only_with_force(
        project: Path, checked: tuple[list[Config], Callable[[Config], int]], force: bool, kept: bool) -> None:
    (project / ".env").write_text("OLD=1\n")
    words = ["init", "--provider", "openrouter", "--yes", *(["--force"] if force else [])]
    run(Config(), parse(*words), [], checked[1])
    assert ((project / ".env").read_text() == "OLD=1\n") is kept
    assert (project / ".env.bak").exists() is force


def test_init_with_an_unknown_provider_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Config(), parse("init", "--provider", "nope", "--yes"), [], never_checked) == 2
    assert capsys.readouterr().err == (
        "lynkr: unknown provider 'nope'; choose one of ollama, databricks, azure-anthropic, openrouter, openai, "
        "azure-openai, openai-compatible\n")
    assert not (project / ".env").exists()


def test_init_whose_stdin_ends_early_exits_2(project: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    terminal = init_module.TerminalPrompter

    def prompter() -> init_module.TerminalPrompter:
        return terminal(io.StringIO(""), io.StringIO())  # a terminal whose input has already ended

    monkeypatch.setattr(init_module, "TerminalPrompter", prompter)
    assert run(Config(), parse("init"), [], never_checked) == 2
    assert capsys.readouterr().err == "lynkr: stdin ended before every question was answered\n"
    assert not (project / ".env").exists()


# --- lynkr claude ----------------------------------------------------------------------------------------------


@pytest.fixture
def claude_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``claude`` executable, alone on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "claude"
    executable.write_text("#!/bin/sh\nexit 0\n")
    executable.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return executable


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    """What ``exec_claude`` was asked to run (in a test it must not replace the process)."""
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(claude, "exec_claude", lambda executable, args, env: calls.append(
        (executable, list(args), dict(env))))
    return calls


@pytest.fixture
def gateway() -> Iterator[int]:
    """Something answering HTTP on loopback (any status counts as a running gateway); its port."""
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_claude_not_on_path_exits_127(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run(Config(api_keys=("sk-1",)), parse("claude"), [], never_checked) == 127
    assert capsys.readouterr().err == ("lynkr: the Claude Code CLI is not on PATH; install it with: "
                                       "npm install -g @anthropic-ai/claude-code\n")


def test_claude_runs_against_a_running_gateway_with_the_key_and_the_rest_of_the_words(
        claude_on_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], gateway: int,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(claude, "start_gateway", lambda url: pytest.fail("a running gateway is not started again"))
    assert run(Config(port=gateway, api_keys=("sk-1",)), parse("claude"), ["--key", "sk-mine", "-p", "hi"],
               never_checked) == 0
    assert execs == [(str(claude_on_path), ["-p", "hi"], {
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{gateway}", "ANTHROPIC_API_KEY": "sk-mine",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1"})]
    assert capsys.readouterr().err == ""


def test_claude_starts_the_gateway_when_nothing_answers(
        claude_on_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    started: list[str] = []

    def start(url: str) -> claude.StartedGateway:
        started.append(url)
        return claude.StartedGateway(4242, Path("/tmp/lynkr-serve-x.log"))

    monkeypatch.setattr(claude, "start_gateway", start)
    assert run(Config(port=port, api_keys=("sk-1",)), parse("claude"), [], never_checked) == 0
    assert started == [f"http://127.0.0.1:{port}"]
    assert capsys.readouterr().err == (
        f"lynkr: nothing answers at http://127.0.0.1:{port}; starting `lynkr serve` in the background\n"
        "lynkr: gateway running (pid 4242, log /tmp/lynkr-serve-x.log); stop it with: kill 4242\n")
    assert [(executable, args) for executable, args, _ in execs] == [(str(claude_on_path), [])]


def test_claude_exits_1_when_the_gateway_does_not_start(
        claude_on_path: Path, execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()

    def fail(url: str) -> claude.StartedGateway:
        raise claude.GatewayDidNotStart("lynkr serve exited with 2; see /tmp/lynkr-serve-y.log")

    monkeypatch.setattr(claude, "start_gateway", fail)
    assert run(Config(port=port, api_keys=("sk-1",)), parse("claude"), [], never_checked) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "lynkr: lynkr serve exited with 2; see /tmp/lynkr-serve-y.log"
    assert execs == []
