"""A DATABASE_URL or REDIS_URL whose client is not installed names the extra to install."""

from __future__ import annotations

import sys

import pytest

from app.config import Config, ConfigError
from app.storage import redis_health
from app.storage.db import make_database
from app.storage.extras import MissingExtra, require


def test_an_installed_module_is_returned() -> None:
    assert require("json", "json", "JSON_URL") is sys.modules["json"]


def test_a_missing_module_names_its_extra_and_setting() -> None:
    with pytest.raises(MissingExtra) as caught:
        require("lynkr_no_such_module", "things", "THINGS_URL")
    assert str(caught.value) == ("THINGS_URL is set but the lynkr_no_such_module package is not installed: "
                                 "pip install 'lynkr[things]' (or unset THINGS_URL).")
    assert isinstance(caught.value, ConfigError)


def test_postgres_without_psycopg2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # what an install without the extra looks like
    with pytest.raises(MissingExtra, match=r"pip install 'lynkr\[postgres\]'"):
        make_database(Config(database_url="postgresql://lynkr@127.0.0.1/lynkr"))


def test_redis_without_redis_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtra, match=r"REDIS_URL is set .* pip install 'lynkr\[redis\]'"):
        redis_health.connect("redis://127.0.0.1:1/0?lynkr-extras-test")
