"""The app factory: ``create_app`` assembles the app and does nothing more."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Flask

from app.accounting.auth import KeyChecker
from app.accounting.budgets import Budgets
from app.accounting.keys import KeyStore
from app.accounting.pricing import PriceTable
from app.accounting.ratelimit import make_counters
from app.agent.service import Agent
from app.cache.prompt import PromptCache
from app.config import Config, ConfigError, load_config
from app.logging import configure_logging, get_logger
from app.metrics.recorder import build_metrics
from app.orchestrator import Orchestrator
from app.providers import PROVIDERS, build_providers
from app.providers.capabilities import CapabilityTable
from app.resilience.drain import DRAIN, DrainFlag, InflightLimiter
from app.resilience.redis import breaker_store_for
from app.resilience.retry import BREAKER_STORE, BreakerConfig, BreakerRegistry, BreakerStore, LoadShedder, RetryPolicy
from app.routing import RoutingRule, parse_rules
from app.storage import db as database
from app.storage.migrate import migrate
from app.storage.recorder import Recorder
from app.web.body_deadline import BodyDeadline
from app.web.error_handlers import register_error_handlers
from app.web.middleware import RequestLifecycle
from app.web.services import Services

log = get_logger("app")


def create_app(config: Config | None = None, *, drain: DrainFlag | None = None,
               breaker_store: BreakerStore | None = None, key_store: KeyStore | None = None,
               clock: Callable[[], datetime] | None = None) -> Flask:
    """Build the WSGI app: config → logging → database → metrics → providers → blueprints.

    ``drain`` and ``breaker_store`` default to the process-wide shared ones that ``lynkr serve``
    creates before gunicorn forks (breakers in Redis over that one when ``REDIS_URL`` is set);
    tests pass their own, and may pass a ``key_store`` and a budget ``clock`` driven by a fake clock.
    """
    config = config or load_config()
    configure_logging(config.log_level, config.secrets())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.request_json_limit
    _init_db(app, config)
    metrics = build_metrics(config)
    metrics.init_app(app)
    capabilities = capability_table(config)
    providers = build_providers(config, capabilities)
    recorder = Recorder()
    breakers = BreakerRegistry(providers, BreakerConfig(
        config.breaker_failure_threshold, config.breaker_success_threshold, config.breaker_recovery_timeout_ms,
    ), store=breaker_store or breaker_store_for(config.redis_url, BREAKER_STORE,
                                                 config.breaker_recovery_timeout_ms))
    prices = _prices(config)
    budgets = Budgets.from_config(config, make_counters(config.redis_url), prices,
                                  **({"clock": clock} if clock else {}))
    retry = RetryPolicy(config.retry_max_retries, config.retry_initial_delay_ms, config.retry_max_delay_ms,
                        config.retry_budget_ms)
    agent = Agent(config)
    orchestrator = Orchestrator(config, providers, recorder, breakers, retry, _rules(config),
                                cache=PromptCache.from_config(config), metrics=metrics, prices=prices,
                                budgets=budgets if budgets.enabled else None, agent=agent)
    app.extensions["lynkr"] = Services(
        config=config, drain=drain or DRAIN, limiter=InflightLimiter(config.request_concurrency_cap,
                                                                    config.cap_wait_ms / 1000),
        keys=KeyChecker(config.api_keys, config.admin_keys, key_store or KeyStore()), capabilities=capabilities,
        providers=providers, recorder=recorder,
        orchestrator=orchestrator, breakers=breakers, shedder=_shedder(config),
        agent=agent,
    )
    _register_blueprints(app, config)
    register_error_handlers(app)
    slow_limit = config.slow_body_limit or max(1, config.threads // 4)
    body_deadline = BodyDeadline(app.wsgi_app, timeout_s=config.body_read_timeout_ms / 1000, slow_limit=slow_limit)
    # Flask's documented way to wrap its WSGI callable in middleware
    app.wsgi_app = RequestLifecycle(  # type: ignore[method-assign]
        body_deadline, log_requests=config.request_logging_enabled, metrics=metrics)
    _warn_unconfigured(app.extensions["lynkr"])
    return app


def _init_db(app: Flask, config: Config) -> None:
    database.bind(database.make_database(config))
    if not config.database_url:
        # SQLite is migrated on start so `flask run` and tests need no extra step;
        # PostgreSQL is migrated by `lynkr migrate` / `lynkr serve` before workers start.
        migrate(database.db.obj)

    @app.teardown_appcontext
    def _close_db(exc: BaseException | None) -> None:
        if not database.db.is_closed():
            database.db.close()


def check_settings_files(config: Config) -> None:
    """Read every settings file the configuration names; raises :class:`ConfigError` naming the bad one.

    ``lynkr serve`` calls this before gunicorn starts, so a broken file stops start-up with one
    sentence instead of failing in every worker.
    """
    capability_table(config)
    _rules(config)
    _prices(config)


def capability_table(config: Config) -> CapabilityTable:
    """The built-in capabilities with the ``MODEL_CAPABILITIES`` / ``HOST_PROFILES`` overrides."""
    models = _json_file(config.model_capabilities_file, "MODEL_CAPABILITIES")
    hosts = _json_file(config.host_profiles_file, "HOST_PROFILES")
    try:
        return CapabilityTable(models, hosts)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"MODEL_CAPABILITIES / HOST_PROFILES could not be used ({exc}); "
                          "fix the file or unset the variable.") from exc


def _rules(config: Config) -> list[RoutingRule]:
    if not config.routing_rules_file:
        return []
    raw = _json_file(config.routing_rules_file, "ROUTING_RULES")
    try:
        return parse_rules(raw, frozenset(PROVIDERS))
    except ValueError as exc:
        raise ConfigError(f"ROUTING_RULES={config.routing_rules_file!r}: {exc}; fix the file or unset it.") from exc


def _prices(config: Config) -> PriceTable:
    overrides = _json_file(config.price_table_file, "PRICE_TABLE")
    try:
        return PriceTable(overrides, config.default_price_input, config.default_price_output)
    except ValueError as exc:
        raise ConfigError(f"PRICE_TABLE={config.price_table_file!r}: {exc}; fix the file or unset it.") from exc


def _shedder(config: Config) -> LoadShedder:
    thresholds = [t for t in (config.memory_threshold, config.heap_threshold) if t]
    return LoadShedder(config.max_in_flight_streams or None, config.max_queue_ms or None,
                       min(thresholds) if thresholds else None,
                       config.active_requests_threshold or None)


def _register_blueprints(app: Flask, config: Config) -> None:
    from app.blueprints import dashboard, health, messages, metrics, sessions

    app.register_blueprint(messages.bp)
    app.register_blueprint(sessions.bp)
    app.register_blueprint(dashboard.bp)
    if config.health_check_enabled:
        app.register_blueprint(health.bp)
    if config.metrics_enabled:
        app.register_blueprint(metrics.bp)


def _json_file(path: str, variable: str) -> dict:
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{variable}={path!r} could not be read as JSON ({exc}); "
                          f"point {variable} at a JSON file or unset it.") from exc


def _warn_unconfigured(svc: Services) -> None:
    missing = svc.provider.missing_settings()
    if missing:
        log.warning("provider %s is not configured: set %s", svc.provider.name, ", ".join(missing))


def shutdown(app: Flask) -> None:
    """Flush background writes and close database connections (on worker exit)."""
    app.extensions["lynkr"].recorder.flush()
    app.extensions["lynkr"].orchestrator.cache.close()
    database.close_all()
