"""The optional clients installed as extras: ``lynkr[postgres]`` and ``lynkr[redis]``.

Lynkr runs on SQLite and in-process tiers without them; a ``DATABASE_URL`` or ``REDIS_URL``
that needs one which is missing stops start-up with a sentence naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from app.config import ConfigError


class MissingExtra(ConfigError):
    """A setting needs a client library that is installed with an extra of lynkr."""


def require(module: str, extra: str, setting: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` saying which extra ``setting`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{setting} is set but the {module} package is not installed: "
                           f"pip install 'lynkr[{extra}]' (or unset {setting}).") from exc
