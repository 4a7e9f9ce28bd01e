"""The ``lynkr`` command: ``serve`` (also ``start``, and the default), ``migrate``, ``check``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from app.config import Config, ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lynkr`` console script."""
    parser = argparse.ArgumentParser(prog="lynkr", description="Anthropic Messages API gateway.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then run the gateway under gunicorn (default)")
    sub.add_parser("start", help="same as serve")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser("check", help="print the resolved configuration and probe the provider")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 2
    command = args.command or "serve"
    if command in ("serve", "start"):
        return serve(config)
    if command == "migrate":
        return migrate(config)
    return check(config)


def migrate(config: Config, *, quiet: bool = False) -> int:
    """Apply pending migrations; prints what was applied unless ``quiet``."""
    from app.db import bind, make_database
    from app.migrate import migrate as apply

    database = make_database(config)
    bind(database)
    applied = apply(database)
    database.close_all()
    if not quiet:
        print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def serve(config: Config) -> int:
    """Migrate, then run gunicorn until a signal stops it."""
    from app import serve as server
    from app.logging import configure_logging

    configure_logging(config.log_level, config.secrets())
    # Migrations run in a child process so the gunicorn master never loads the ORM (every
    # worker is forked from it, and the bench counts the whole tree's memory). Each migration
    # is logged as JSON; stdout stays free of other lines.
    done = subprocess.run([sys.executable, "-m", "app", "migrate"], stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        return done.returncode
    server.run(config.prestop_delay_ms)
    return 0


def check(config: Config) -> int:
    """Print the masked configuration and the provider's status; non-zero when unusable."""
    from app.capabilities import CapabilityTable
    from app.providers import build_providers

    print(json.dumps({"config": config.masked()}, indent=2, default=str))
    provider = build_providers(config, CapabilityTable())[config.model_provider]
    missing = provider.missing_settings()
    if missing:
        result: dict[str, Any] = {"ok": False, "provider": provider.name,
                                  "error": "not configured: set " + ", ".join(missing)}
    else:
        result = provider.probe()
    print(json.dumps({"provider": result, "service": _service_status(config)}, indent=2))
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
