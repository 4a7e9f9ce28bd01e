"""create_app assembles blueprints and services; check_settings_files names a bad settings file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.config import Config, ConfigError
from app.factory import capability_table, check_settings_files, create_app
from app.resilience.drain import DrainFlag
from app.resilience.retry import InProcessStore
from app.web.middleware import RequestLifecycle
from app.web.services import Services

ALWAYS = {"messages", "sessions", "dashboard"}


def settings_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_create_app_registers_the_blueprints_and_services(make_app: Callable[..., Flask], drain: DrainFlag) -> None:
    app = make_app()

    assert set(app.blueprints) == ALWAYS | {"health", "metrics"}
    svc = app.extensions["lynkr"]
    assert isinstance(svc, Services)
    assert svc.drain is drain
    assert sorted(svc.providers) == sorted(svc.breakers.names())
    assert svc.provider.name == "databricks"
    assert svc.orchestrator.providers is svc.providers
    assert svc.orchestrator.recorder is svc.recorder
    assert svc.orchestrator.breakers is svc.breakers
    assert svc.orchestrator.agent is svc.agent
    assert svc.orchestrator.budgets is None
    assert isinstance(app.wsgi_app, RequestLifecycle)
    assert app.config["MAX_CONTENT_LENGTH"] == svc.config.request_json_limit
    svc.recorder.flush()


def test_health_and_metrics_blueprints_follow_their_settings(make_app: Callable[..., Flask]) -> None:
    app = make_app(health_check_enabled=False, metrics_enabled=False)

    assert set(app.blueprints) == ALWAYS
    assert app.test_client().get("/health").status_code == 404
    app.extensions["lynkr"].recorder.flush()


def test_the_routes_answer(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()

    assert client.get("/").get_json() == {"name": "lynkr", "status": "ok"}
    assert client.get("/health/live").status_code == 200


def test_an_unconfigured_provider_is_warned_about(make_config: Callable[..., Config],
                                                 log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.app")

    create_app(make_config(model_provider="openai"), drain=DrainFlag(), breaker_store=InProcessStore())

    assert [r.getMessage() for r in records] == ["provider openai is not configured: set OPENAI_API_KEY"]


def test_check_settings_files_passes_with_none_set(make_config: Callable[..., Config]) -> None:
    check_settings_files(make_config())


def test_check_settings_files_passes_with_good_files(make_config: Callable[..., Config], tmp_path: Path) -> None:
    check_settings_files(make_config(
        model_capabilities_file=settings_file(tmp_path, "caps.json", '{"my-model": {"context_window": 8000}}'),
        routing_rules_file=settings_file(tmp_path, "rules.json", '[{"if": {}, "then": "ollama:qwen"}]'),
        price_table_file=settings_file(tmp_path, "prices.json", '{"my-model": {"input": 1, "output": 2}}'),
    ))


def test_a_model_capabilities_file_that_is_not_json_is_named(make_config: Callable[..., Config],
                                                            tmp_path: Path) -> None:
    path = settings_file(tmp_path, "caps.json", "{not json")

    with pytest.raises(ConfigError) as caught:
        check_settings_files(make_config(model_capabilities_file=path))

    message = str(caught.value)
    assert message.startswith(f"MODEL_CAPABILITIES={path!r} could not be read as JSON (")
    assert message.endswith("point MODEL_CAPABILITIES at a JSON file or unset it.")


def test_a_missing_model_capabilities_file_is_named(make_config: Callable[..., Config], tmp_path: Path) -> None:
    path = str(tmp_path / "absent.json")

    with pytest.raises(ConfigError) as caught:
        check_settings_files(make_config(model_capabilities_file=path))

    assert str(caught.value).startswith(f"MODEL_CAPABILITIES={path!r} could not be read as JSON (")


def test_model_capabilities_with_an_unknown_field_is_refused(make_config: Callable[..., Config],
                                                            tmp_path: Path) -> None:
    path = settings_file(tmp_path, "caps.json", '{"my-model": {"wings": 2}}')

    with pytest.raises(ConfigError) as caught:
        capability_table(make_config(model_capabilities_file=path))

    assert str(caught.value).startswith("MODEL_CAPABILITIES / HOST_PROFILES could not be used (model 'my-model': ")
    assert str(caught.value).endswith("fix the file or unset the variable.")


@pytest.mark.parametrize(("setting", "text", "expected"), [
    ("routing_rules_file", '{"if": {}}', "ROUTING_RULES={path!r}: expected a JSON list"),
    ("routing_rules_file", '[{"if": {}, "then": "nowhere"}]',
     "ROUTING_RULES={path!r}: rule 1 routes to unknown provider 'nowhere'; fix the file or unset it."),
    ("price_table_file", '{"my-model": {"input": "cheap"}}', "PRICE_TABLE={path!r}: price for 'my-model' needs"),
    ("host_profiles_file", "[", "HOST_PROFILES={path!r} could not be read as JSON"),
])
def test_each_bad_settings_file_is_named(make_config: Callable[..., Config], tmp_path: Path, setting: str,
                                         text: str, expected: str) -> None:
    path = settings_file(tmp_path, "settings.json", text)
    overrides: dict[str, Any] = {setting: path}

    with pytest.raises(ConfigError) as caught:
        check_settings_files(make_config(**overrides))

    assert str(caught.value).startswith(expected.format(path=path))


def test_create_app_refuses_a_bad_settings_file(make_config: Callable[..., Config], tmp_path: Path) -> None:
    path = settings_file(tmp_path, "caps.json", "{not json")

    with pytest.raises(ConfigError, match="MODEL_CAPABILITIES="):
        create_app(make_config(model_capabilities_file=path), drain=DrainFlag(), breaker_store=InProcessStore())
