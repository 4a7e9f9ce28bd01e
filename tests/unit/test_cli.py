"""The ``lynkr`` command line: its subcommands and arguments, configuration errors, migrate and keys."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.accounting.auth import key_id
from app.config import Config
from app.storage.migrate import available


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without .env, a database of the test's own, and stderr free of log lines
    (an earlier test may have sent the lynkr loggers to stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logging.getLogger("lynkr"), "handlers", [])
    for name in ("DATABASE_URL", "REDIS_URL", "LYNKR_THREADS", "HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SESSION_DB_PATH", str(tmp_path / "cli.db"))
    return tmp_path


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    usage = "".join(capsys.readouterr().out.split())
    assert usage.startswith("usage:lynkr[-h]{serve,start,migrate,check,keys,mcp,index,init,env,claude}...")


@pytest.mark.parametrize(("argv", "complaint"), [
    (["bogus"], "argument command: invalid choice: 'bogus'"),
    (["keys"], "the following arguments are required: action"),
    (["keys", "create"], "the following arguments are required: name"),
    (["keys", "drop", "x"], "argument action: invalid choice: 'drop'"),
    (["mcp", "call", "server"], "the following arguments are required: tool"),
    (["mcp", "call", "server", "tool", "{}", "extra"], "unrecognized arguments: extra"),
])
def test_bad_arguments_exit_2_with_argparses_reason(argv: list[str], complaint: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["serve"], ["start"]])
def test_serve_is_the_default(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []

    def serve(config: Config) -> int:
        served.append(config.session_db_path)
        return 7

    monkeypatch.setattr(cli, "serve", serve)
    assert cli.main(argv) == 7
    assert served == [str(Path.cwd() / "cli.db")]


def test_everything_after_claude_belongs_to_claude_code(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def run(config: Config, args: Any, rest: list[str], check: Any) -> int:
        seen.append((args.command, rest))
        return 0

    monkeypatch.setattr(cli.onboarding, "run", run)
    assert cli.main(["claude", "--resume", "abc", "-p", "hi"]) == 0
    assert seen == [("claude", ["--resume", "abc", "-p", "hi"])]


def test_a_bad_setting_stops_with_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LYNKR_THREADS", "many")
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lynkr: LYNKR_THREADS='many' is not valid: ")
    assert err.count("\n") == 1


def test_migrate_applies_once(capsys: pytest.CaptureFixture[str]) -> None:
    versions = [version for version, _ in available()]
    assert cli.main(["migrate"]) == 0
    assert capsys.readouterr().out == f"applied {len(versions)} migration(s): {versions}\n"
    assert cli.main(["migrate"]) == 0
    assert capsys.readouterr().out == "applied 0 migration(s)\n"


def test_keys_create_list_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "create", "ci", "--admin"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("sk-lynkr-")
    assert err == "created key 1 (ci, admin); store it now: it is not shown again\n"
    assert cli.main(["keys", "create", "ci"]) == 1
    assert capsys.readouterr().err == ("lynkr: an active key is already named 'ci'; revoke it or pick another "
                                       "name\n")
    assert cli.main(["keys", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["id"], k["name"], k["key_id"], k["admin"], k["revoked_at"]) for k in listed] == [
        (1, "ci", key_id(key), True, None)]
    assert key not in json.dumps(listed)
    assert cli.main(["keys", "revoke", "1"]) == 0
    assert capsys.readouterr().out == "revoked 1 key(s)\n"
    assert cli.main(["keys", "revoke", "ci"]) == 1
    assert capsys.readouterr().err == "lynkr: no active key has id or name 'ci'\n"


@pytest.mark.parametrize(("model", "window"), [("my-finetune-7b", "unknown — the upstream decides"),
                                               ("gpt-4o", "128000 tokens")])
def test_check_reports_the_context_window_it_will_use(capsys: pytest.CaptureFixture[str], model: str,
                                                      window: str) -> None:
    from app.config import Config

    config = Config(model_provider="openai-compatible", openai_compatible_model=model, port=9)
    assert cli.check(config) == 1  # no endpoint: not configured
    out = capsys.readouterr().out
    report = json.loads(out[out.index('{\n  "provider"'):])
    assert report["provider"]["context_window"] == window
    assert report["provider"]["error"] == "not configured: set OPENAI_COMPATIBLE_ENDPOINT"
