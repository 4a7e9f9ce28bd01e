"""The settings table: each parser's accepted and refused values, and a table consistent with Config."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.config import Config
from app.settings import PROVIDER_NAMES, SETTINGS


def parse(env: str, raw: str) -> Any:
    """``raw`` read by the parser of the setting named ``env``."""
    return next(setting for setting in SETTINGS if setting.env == env).parse(raw)


@pytest.mark.parametrize(("raw", "value"), [
    ("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("false", False), ("No", False),
    ("off", False), ("", False)])
def test_booleans(raw: str, value: bool) -> None:
    assert parse("SEND_USER_ID", raw) is value


@pytest.mark.parametrize(("env", "raw", "value"), [
    ("LYNKR_THREADS", " 42 ", 42),
    ("LYNKR_THREADS", "0", 0),
    ("LOAD_SHEDDING_MEMORY_THRESHOLD", "0.85", 0.85),
    ("BUDGET_KEY_DAILY_USD", "12.5", 12.5),
    ("HOST", "  spaced  ", "spaced"),
    ("LYNKR_API_KEYS", "a, b,,c ,", ("a", "b", "c")),
    ("LYNKR_API_KEYS", "", ()),
    ("REQUEST_JSON_LIMIT", "32mb", 32 * 1024**2),
    ("REQUEST_JSON_LIMIT", "512 KB", 512 * 1024),
    ("REQUEST_JSON_LIMIT", "1.5gb", int(1.5 * 1024**3)),
    ("REQUEST_JSON_LIMIT", "100", 100),
    ("MODEL_PROVIDER", " Ollama ", "ollama"),
    ("TOOL_EXECUTION_MODE", "CLIENT", "client"),
    ("DATABRICKS_API_FORMAT", "openai", "openai"),
    ("DATABRICKS_API_FORMAT", "", ""),
])
def test_values_are_read_by_their_settings_parser(env: str, raw: str, value: Any) -> None:
    assert parse(env, raw) == value


@pytest.mark.parametrize(("env", "raw", "message"), [
    ("SEND_USER_ID", "maybe", "expected true or false"),
    ("LYNKR_THREADS", "-1", "expected a whole number of at least 0"),
    ("LYNKR_THREADS", "1.5", "invalid literal"),
    ("BUDGET_KEY_DAILY_USD", "-0.01", "expected an amount in USD of at least 0"),
    ("BUDGET_KEY_DAILY_USD", "nan", "expected an amount in USD of at least 0"),
    ("REQUEST_JSON_LIMIT", "32 parsecs", "expected a size such as 32mb, 512kb or a number of bytes"),
    ("MODEL_PROVIDER", "anthropic", "expected one of azure-anthropic, azure-openai, databricks, ollama, openai, "
                                      "openai-compatible, openrouter"),
    ("TOOL_EXECUTION_MODE", "auto", "expected server, client or passthrough"),
    ("DATABRICKS_API_FORMAT", "grpc", "expected anthropic or openai"),
])
def test_bad_values_are_refused_with_what_was_expected(env: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(env, raw)


def test_every_setting_is_one_config_field_with_the_same_default() -> None:
    fields = {field.name: field for field in dataclasses.fields(Config)}
    envs = [setting.env for setting in SETTINGS]
    attrs = [setting.attr for setting in SETTINGS]
    assert len(envs) == len(set(envs))
    assert len(attrs) == len(set(attrs))
    assert [attr for attr in attrs if attr not in fields] == []
    assert [setting.env for setting in SETTINGS if getattr(Config(), setting.attr) != setting.default] == []


def test_every_setting_is_documented_and_credentials_are_secret() -> None:
    assert [setting.env for setting in SETTINGS if not setting.doc.strip()] == []
    secret = {setting.env for setting in SETTINGS if setting.secret}
    assert {"LYNKR_API_KEYS", "LYNKR_ADMIN_KEYS", "DATABASE_URL", "REDIS_URL", "GIT_HTTP_TOKEN",
            "WEB_SEARCH_API_KEY"} <= secret
    keys = {setting.env for setting in SETTINGS if setting.env.endswith(("_API_KEY", "_TOKEN"))}
    assert keys - secret == set()


def test_every_provider_name_is_a_registered_provider() -> None:
    from app.providers import PROVIDERS

    assert set(PROVIDERS) == PROVIDER_NAMES
