"""gunicorn's logger without its access log, even where stock gunicorn would turn it on."""

from __future__ import annotations

import logging

from gunicorn import glogging
from gunicorn.config import Config

from app.gunicorn_logger import Logger


def config_with_logconfig() -> Config:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("logconfig_dict", {"version": 1, "disable_existing_loggers": False})
    return cfg


def test_the_access_log_is_off_where_stock_gunicorn_would_write_it() -> None:
    assert glogging.Logger(config_with_logconfig()).access_log_enabled is True
    assert Logger(config_with_logconfig()).access_log_enabled is False


def test_access_builds_nothing_and_writes_nothing() -> None:
    logger = Logger(config_with_logconfig())
    records = Records()
    logger.access_log.addHandler(records)
    # Stock gunicorn would read these objects; ours returns before touching them.
    logger.access(None, None, None, None)  # type: ignore[arg-type]
    assert records.seen == []


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


def test_error_logging_is_gunicorns() -> None:
    logger = Logger(config_with_logconfig())
    assert logger.error_log.name == "gunicorn.error"
    assert logger.loglevel == logging.INFO
