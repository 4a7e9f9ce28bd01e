"""The service container: one per app, found from the current app, naming the configured provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from app.providers.ollama import OllamaProvider
from app.web.services import Services, services


def test_services_are_the_current_apps(app: Flask, make_app: Callable[..., Flask]) -> None:
    other = make_app()
    with app.app_context():
        mine = services()
    with other.app_context():
        theirs = services()
    assert isinstance(mine, Services)
    assert mine is app.extensions["lynkr"]
    assert theirs is not mine
    other.extensions["lynkr"].recorder.flush()


def test_provider_is_the_configured_one(make_app: Callable[..., Flask]) -> None:
    app = make_app(model_provider="ollama")
    with app.app_context():
        svc = services()
        assert isinstance(svc.provider, OllamaProvider)
        assert svc.provider is svc.providers["ollama"]
        assert svc.config.model_provider == "ollama"
    app.extensions["lynkr"].recorder.flush()


def test_outside_an_app_there_are_no_services() -> None:
    with pytest.raises(RuntimeError, match="application context"):
        services()
