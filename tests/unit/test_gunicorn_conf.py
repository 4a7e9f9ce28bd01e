"""``gunicorn.conf.py``: workers per usable CPU by default, and no gunicorn access log."""

from __future__ import annotations

import datetime
import signal
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from app import host
from app.gunicorn_logger import Logger
from app.host import default_workers
from app.mcp import supervisor
from app.serve import _read_settings, conf_file


def test_one_worker_per_usable_cpu_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert _read_settings(conf_file())["workers"] == default_workers()
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert _read_settings(conf_file())["workers"] == 3


def test_the_project_config_uses_the_quiet_logger_and_a_logconfig_dict() -> None:
    settings = _read_settings(conf_file())
    assert settings["logger_class"] == "app.gunicorn_logger.Logger"
    assert settings["logconfig_dict"]  # the reason stock gunicorn would turn its access log on


def test_access_builds_nothing() -> None:
    cfg = Config()
    cfg.set("logconfig_dict", _read_settings(conf_file())["logconfig_dict"])
    logger = Logger(cfg)
    assert logger.access_log_enabled is False
    # Stock gunicorn would read the response, request and environ here (and fail on these).
    assert logger.access(None, None, None, datetime.timedelta(seconds=1)) is None


def test_a_booted_worker_starts_its_mcp_servers_then_exempts_what_it_loaded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: calls.append(f"signal {signum}"))
    monkeypatch.setattr(supervisor, "start_at_boot", lambda config: calls.append(f"mcp {config}"))
    monkeypatch.setattr(host, "exempt_loaded_objects", lambda: calls.append("freeze"))
    worker = SimpleNamespace(wsgi=SimpleNamespace(extensions={"lynkr": SimpleNamespace(config="the config")}))

    _read_settings(conf_file())["post_worker_init"](worker)

    assert calls == [f"signal {signal.SIGINT}", "mcp the config", "freeze"]
