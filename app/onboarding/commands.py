"""The ``lynkr init``, ``lynkr env`` and ``lynkr claude`` subcommands (``app.cli`` dispatches here).

Imports what a command needs only when it runs: ``app.cli`` is also what starts the gunicorn
master, which should not load the providers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from app.config import Config

COMMANDS = ("init", "env", "claude")


def add_parsers(sub: Any) -> None:
    """Add the three subcommands to ``lynkr``'s subparsers."""
    init = sub.add_parser("init", help="choose a provider, check it, write .env, then probe it")
    init.add_argument("--provider", help="skip the question (ollama, databricks, openrouter, …)")
    init.add_argument("--yes", action="store_true", help="take every default; never overwrite .env")
    init.add_argument("--force", action="store_true", help="with --yes: overwrite .env (kept as .env.bak)")
    env = sub.add_parser("env", help="print the exports that point Claude Code at this gateway")
    env.add_argument("--key", help="the key Claude Code should send (default: the first LYNKR_API_KEYS key)")
    sub.add_parser("claude", help="run Claude Code through this gateway, starting it if needed: "
                                  "lynkr claude [--key KEY] [CLAUDE ARGS…]")


def run(config: Config, args: argparse.Namespace, rest: list[str], check: Callable[[Config], int]) -> int:
    """Run ``args.command`` (``rest``: the words after ``claude``); returns the exit code."""
    if args.command == "init":
        return _init(config, args, check)
    from app.factory import capability_table
    from app.onboarding import claude

    key, passed = (args.key, []) if args.command == "env" else claude_key(rest)
    env = claude.claude_env(config, capability_table(config), key)
    if env["ANTHROPIC_API_KEY"] == claude.OPEN_MODE_KEY:
        print("lynkr: no LYNKR_API_KEYS / LYNKR_ADMIN_KEYS: sending a placeholder key; if your keys are kept "
              "in the database (lynkr keys), pass --key KEY", file=sys.stderr)
    if args.command == "env":
        sys.stdout.write(claude.shell_exports(env))
        return 0
    return _claude(env, passed)


def claude_key(words: list[str]) -> tuple[str | None, list[str]]:
    """A leading ``--key KEY`` (or ``--key=KEY``) of ``lynkr claude``, and the words left for claude."""
    if words[:1] == ["--key"] and len(words) > 1:
        return words[1], words[2:]
    if words and words[0].startswith("--key="):
        return words[0].split("=", 1)[1], words[1:]
    return None, words


def _init(config: Config, args: argparse.Namespace, check: Callable[[Config], int]) -> int:
    from app.config import load_config
    from app.onboarding.init import Defaults, TerminalPrompter, UnknownProvider, run_init

    prompter = Defaults(force=args.force) if args.yes else TerminalPrompter()
    try:
        return run_init(config, prompter, sys.stdout, provider=args.provider, check=check, reload=load_config)
    except UnknownProvider as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 2
    except EOFError:
        print("lynkr: stdin ended before every question was answered", file=sys.stderr)
        return 2


def _claude(env: dict[str, str], args: list[str]) -> int:
    from app.onboarding import claude

    try:
        executable = claude.find_claude()
    except claude.ClaudeNotFound as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 127
    url = env["ANTHROPIC_BASE_URL"]
    if not claude.answering(url):
        print(f"lynkr: nothing answers at {url}; starting `lynkr serve` in the background", file=sys.stderr)
        try:
            started = claude.start_gateway(url)
        except claude.GatewayDidNotStart as exc:
            print(f"lynkr: {exc}", file=sys.stderr)
            return 1
        print(f"lynkr: gateway running (pid {started.pid}, log {started.log_path}); "
              f"stop it with: kill {started.pid}", file=sys.stderr)
    claude.exec_claude(executable, args, env)
    return 0  # not reached: exec_claude replaces this process
