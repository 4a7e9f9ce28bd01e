"""How long a default Lynkr takes to stop cleanly, which every deployment file must allow for."""

from __future__ import annotations

from app.config import Config


def drain_seconds() -> float:
    """The pre-stop delay plus the graceful shutdown timeout, at their defaults."""
    config = Config()
    return (config.prestop_delay_ms + config.graceful_shutdown_timeout_ms) / 1000
