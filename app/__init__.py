"""Lynkr: an Anthropic Messages API gateway.

``create_app`` is importable from here (``flask --app app run`` finds it), but the package
itself imports nothing heavy, so ``lynkr serve``'s gunicorn master stays small: only workers
load Flask and the providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Any = None, *, drain: Any = None, breaker_store: Any = None) -> Flask:
    """Build the WSGI app (see :func:`app.factory.create_app`)."""
    from app.factory import create_app as build

    return build(config, drain=drain, breaker_store=breaker_store)


def shutdown(app: Flask) -> None:
    """Flush background writes and close database connections (on worker exit)."""
    from app.factory import shutdown as stop

    stop(app)
