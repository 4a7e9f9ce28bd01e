"""``lynkr serve``'s gunicorn application: which gunicorn.conf.py, its settings, and the master hooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import master
from app.serve import CONF_NAME, LynkrApplication, _read_settings, conf_file

REPO_CONF = Path(__file__).resolve().parents[2] / CONF_NAME


def test_the_working_directorys_conf_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert conf_file() == REPO_CONF
    (tmp_path / CONF_NAME).write_text("workers = 3\n")
    assert conf_file() == tmp_path / CONF_NAME


def test_settings_are_the_files_public_names(tmp_path: Path) -> None:
    conf = tmp_path / CONF_NAME
    conf.write_text("import os\nworkers = 3\n_private = 1\nhere = __file__\nname = __name__\n")
    settings = _read_settings(conf)
    assert settings["workers"] == 3
    assert settings["_private"] == 1
    assert settings["here"] == str(conf)
    assert settings["name"] == "__gunicorn_conf__"
    assert "__builtins__" not in settings


def test_known_settings_apply_and_missing_master_hooks_are_ours(tmp_path: Path) -> None:
    conf = tmp_path / CONF_NAME
    conf.write_text("bind = '127.0.0.1:9999'\nworkers = 3\nthreads = None\nnot_a_setting = 1\n"
                    "def on_exit(server):\n    pass\n")
    cfg = LynkrApplication(conf).cfg
    assert cfg.bind == ["127.0.0.1:9999"]
    assert cfg.workers == 3
    assert cfg.threads == 1  # None leaves gunicorn's default
    assert cfg.on_starting is master.on_starting
    assert cfg.on_exit.__module__ == "__gunicorn_conf__"


def test_the_repositorys_conf_file_loads_as_gthread_without_access_log() -> None:
    cfg = LynkrApplication(REPO_CONF).cfg
    assert cfg.worker_class_str == "gthread"
    assert cfg.logger_class.__module__ == "app.gunicorn_logger"
    assert cfg.accesslog is None
    assert cfg.on_starting is master.on_starting
