"""The ``lynkr`` command: ``serve`` (also ``start``, and the default), ``migrate``, ``check``, ``keys``, ``mcp``;
``index`` lives in :mod:`app.tools.index.command`; ``init``, ``env`` and ``claude`` in
:mod:`app.onboarding.commands`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from app.config import Config, ConfigError, load_config
from app.onboarding import commands as onboarding
from app.tools.index import command as index_command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lynkr`` console script."""
    parser = argparse.ArgumentParser(prog="lynkr", description="Anthropic Messages API gateway.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then run the gateway under gunicorn (default)")
    sub.add_parser("start", help="same as serve")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser("check", help="print the resolved configuration and probe the provider")
    _keys_parser(sub)
    _mcp_parser(sub)
    index_command.add_parser(sub)
    onboarding.add_parsers(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `lynkr claude` belongs to Claude Code: argparse must not read its options.
    args = parser.parse_args(argv[:1] if argv[:1] == ["claude"] else argv)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 2
    command = args.command or "serve"
    if command in ("serve", "start"):
        return serve(config)
    if command == "keys":
        return keys(config, args)
    if command == "mcp":
        return mcp(config, args)
    if command == "index":
        return index_command.run(config, args, sys.stdout, sys.stderr)
    if command in onboarding.COMMANDS:
        return onboarding.run(config, args, argv[1:], check)
    # `migrate` (which `serve` runs first, in a child) and `check` read the settings files first:
    # a broken one stops them with one sentence instead of failing in every worker.
    from app.factory import check_settings_files

    try:
        check_settings_files(config)
    except ConfigError as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 2
    if command == "migrate":
        return migrate(config)
    return check(config)


def migrate(config: Config, *, quiet: bool = False) -> int:
    """Apply pending migrations; prints what was applied unless ``quiet``.

    ``lynkr serve`` runs ``lynkr migrate`` in a child process before gunicorn starts (see :func:`serve`).
    """
    from app.console.progress import Progress
    from app.storage.db import bind, make_database
    from app.storage.migrate import migrate as apply
    from app.storage.migrate import pending

    database = make_database(config)
    bind(database)
    with database.connection_context():
        todo = len(pending(database))
    # Off a terminal each migration is already one JSON log line (what `lynkr serve` keeps).
    if quiet or not todo or not sys.stderr.isatty():
        applied = apply(database)
    else:
        with Progress("migrating", total=todo) as progress:
            applied = apply(database, on_applied=progress.advance)
    database.close_all()
    if not quiet:
        print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def _keys_parser(sub: Any) -> None:
    parser = sub.add_parser("keys", help="create, list and revoke API keys kept in the database")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (the only time it is shown)")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="the key may also read every session")
    actions.add_parser("list", help="names, ids, created and revoked times (never the keys)")
    revoke = actions.add_parser("revoke", help="revoke a key by id or name (seen everywhere within 5 s)")
    revoke.add_argument("id_or_name")


def _mcp_parser(sub: Any) -> None:
    parser = sub.add_parser("mcp", help="list the MCP servers and their tools, or call one tool")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="each server's state, protocol version and tools")
    call = actions.add_parser("call", help="call one tool: lynkr mcp call SERVER TOOL '{\"arg\": 1}'")
    call.add_argument("server")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="the arguments as a JSON object")


def mcp(config: Config, args: argparse.Namespace) -> int:
    """``lynkr mcp list|call`` (the servers are started in this process and stopped at the end)."""
    from app.mcp.commands import call_tool, list_servers

    if args.action == "list":
        return list_servers(config, sys.stdout)
    return call_tool(config, args.server, args.tool, args.arguments, sys.stdout, sys.stderr)


def keys(config: Config, args: argparse.Namespace) -> int:
    """``lynkr keys create|list|revoke`` against the configured database (migrated first)."""
    from app.accounting.keys import create_key, list_keys, revoke_key
    from app.storage.db import bind, db, make_database

    migrate(config, quiet=True)
    database = make_database(config)
    bind(database)
    try:
        with db.connection_context():
            if args.action == "create":
                try:
                    row, key = create_key(args.name, admin=args.admin)
                except ValueError as exc:
                    print(f"lynkr: {exc}", file=sys.stderr)
                    return 1
                print(key)
                print(f"created key {row.id} ({row.name}{', admin' if row.admin else ''}); "
                      "store it now: it is not shown again", file=sys.stderr)
                return 0
            if args.action == "list":
                print(json.dumps(list_keys(), indent=2))
                return 0
            revoked = revoke_key(args.id_or_name)
    finally:
        database.close_all()
    if not revoked:
        print(f"lynkr: no active key has id or name {args.id_or_name!r}", file=sys.stderr)
        return 1
    print(f"revoked {revoked} key(s)")
    return 0


def serve(config: Config) -> int:
    """Migrate, then run gunicorn until a signal stops it."""
    from app import serve as server
    from app.logging import configure_logging

    configure_logging(config.log_level, config.secrets())
    # Settings files are checked and migrations run in a child process, so the gunicorn master
    # never loads the ORM (every worker is forked from it, and the bench counts the whole tree's
    # memory). Each migration is logged as JSON; stdout stays free of other lines.
    done = subprocess.run([sys.executable, "-m", "app", "migrate"], stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        return done.returncode
    server.run()
    return 0


def check(config: Config) -> int:
    """Print the masked configuration and the provider's status; non-zero when unusable."""
    from app.console.progress import Progress
    from app.factory import capability_table
    from app.providers import build_providers
    from app.providers.base import PROBE_MODEL

    print(json.dumps({"config": config.masked()}, indent=2, default=str))
    provider = build_providers(config, capability_table(config))[config.model_provider]
    missing = provider.missing_settings()
    with Progress("checking", total=2) as progress:
        if missing:
            result: dict[str, Any] = {"ok": False, "provider": provider.name,
                                      "error": "not configured: set " + ", ".join(missing)}
        else:
            result = provider.probe()
        result["context_window"] = provider.context_window_text(result.get("model") or
                                                                provider.upstream_model(PROBE_MODEL))
        progress.advance(f"provider {provider.name}")
        service = _service_status(config)
        progress.advance(f"gateway {service['url']}")
    print(json.dumps({"provider": result, "service": service}, indent=2))
    return 0 if result.get("ok") else 1


def _service_status(config: Config) -> dict[str, Any]:
    import requests

    host = "127.0.0.1" if config.host in ("0.0.0.0", "") else config.host
    url = f"http://{host}:{config.port}/health/ready"
    try:
        response = requests.get(url, timeout=3)
    except requests.RequestException:
        return {"url": url, "running": False}
    return {"url": url, "running": True, "ready": response.status_code == 200,
            "checks": response.json().get("checks") if response.ok or response.status_code == 503 else None}


if __name__ == "__main__":
    sys.exit(main())
