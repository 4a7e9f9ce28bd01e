"""Structured JSON logs: one formatter, the request id on every line, secrets redacted.

The request id lives in a context variable set by the request middleware; gunicorn's gthread
workers iterate a streamed response on the thread that took the request, so log lines written
while streaming still carry it. Redaction runs on the finished line, so no field — message,
arguments, exception text — can leak an API key, a bearer token or an ``x-api-key`` value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("lynkr_request_id", default=None)

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    re.compile(r"(?i)((?:x-)?api[-_]key[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer)(?:(?:basic|digest|token)\s+)?[^\s\"',]+"),
    re.compile(r"()\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"()\bdapi[0-9a-f]{16,}\b"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@\"']+(?=@)"),  # userinfo in a URL
]
# Every pattern above needs one of these (in lower case): a line without any skips the
# patterns, which would otherwise cost more than formatting the line itself.
_PATTERN_TRIGGERS = ("bearer", "api-key", "api_key", "authorization", "sk-", "pk-", "rk-", "dapi", "@")
REDACTED = "[REDACTED]"


class Redactor:
    """Masks known secret values and anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._values = re.compile("|".join(re.escape(v) for v in self._secrets)) if self._secrets else None

    def __call__(self, text: str) -> str:
        if self._values is not None and any(secret in text for secret in self._secrets):
            text = self._values.sub(REDACTED, text)
        lowered = text.lower()
        if any(trigger in lowered for trigger in _PATTERN_TRIGGERS):
            for pattern in _SECRET_PATTERNS:
                text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


_CLIENT_REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` with every configured secret and credential-shaped value masked: for anything a
    client, a log line or a row may show (the secrets are those :func:`configure_logging` got)."""
    return _CLIENT_REDACTOR(text)


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    return value


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record that does not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class RedactingJsonFormatter(OrjsonFormatter):
    """JSON lines with ``timestamp``, ``level``, ``logger``, ``message`` and extras, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """The stream is always the current ``sys.stderr``."""


def configure_logging(level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Send the ``lynkr`` loggers' records to stderr as JSON lines (idempotent)."""
    handler = StderrHandler()
    global _CLIENT_REDACTOR
    _CLIENT_REDACTOR = Redactor(secrets)
    handler.setFormatter(RedactingJsonFormatter(_CLIENT_REDACTOR))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("lynkr")
    logger.handlers = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def json_formatter() -> RedactingJsonFormatter:
    """The formatter for gunicorn's own logger (referenced from ``gunicorn.conf.py``)."""
    return RedactingJsonFormatter(Redactor())


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``lynkr`` hierarchy."""
    return logging.getLogger("lynkr." + name if not name.startswith("lynkr") else name)
