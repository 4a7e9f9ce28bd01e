"""Gunicorn's logger, minus its access log: the app writes one JSON line per request itself.

Stock gunicorn turns its access log on whenever a ``logconfig_dict`` is set (ours gives its
error log the app's JSON shape), and then builds a dict of every header and environ variable for
each request only to hand it to a logger with no handler — ~4 % of a worker's Python time.
"""

from __future__ import annotations

from gunicorn import glogging


class Logger(glogging.Logger):
    """Gunicorn's error logging unchanged; no access log."""

    def _compute_access_log_enabled(self) -> bool:
        return False
