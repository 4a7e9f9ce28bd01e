"""Configuration: the one reader of ``os.environ``.

Every setting is declared once in :data:`app.settings.SETTINGS` (variable name, parser, default,
unit, and whether it is a secret); this module turns the environment into a :class:`Config`,
validates it across settings, and writes the masked view printed by ``lynkr check`` and
``.env.example``. Variable names are the Node Lynkr's wherever it had one,
and durations keep its unit (milliseconds). A malformed value raises :class:`ConfigError` with
one sentence naming the variable and what to set; missing provider credentials do not — the
service starts and says which variables to set.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.settings import PROVIDER_NAMES, SETTINGS, Setting

__all__ = ["PROVIDER_NAMES", "SETTINGS", "Config", "ConfigError", "Setting", "env_example", "load_config", "mask",
           "validate"]


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message says what to set."""


@dataclass(frozen=True)
class Config:
    """Resolved settings; build with :func:`load_config` or directly in tests."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    threads: int = 1024
    max_concurrent_requests: int = 0
    cap_wait_ms: int = 2000
    graceful_shutdown_timeout_ms: int = 30000
    prestop_delay_ms: int = 5000
    upstream_timeout_ms: int = 600000
    connect_timeout_ms: int = 10000
    keepalive_commit_ms: int = 10000
    ping_interval_ms: int = 15000
    request_json_limit: int = 32 * 1024**2
    body_read_timeout_ms: int = 5000
    slow_body_limit: int = 0
    max_upstream_event_bytes: int = 16 * 1024**2
    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    allow_open: bool = False
    budget_key_daily_tokens: int = 0
    budget_key_monthly_tokens: int = 0
    budget_key_daily_usd: float = 0.0
    budget_key_monthly_usd: float = 0.0
    budget_session_tokens: int = 0
    budget_session_usd: float = 0.0
    rate_limit_requests_per_minute: int = 0
    rate_limit_tokens_per_minute: int = 0
    price_table_file: str = ""
    default_price_input: float | None = None
    default_price_output: float | None = None
    model_provider: str = "databricks"
    model_default: str = ""
    databricks_api_base: str = ""
    databricks_api_key: str = ""
    databricks_endpoint_path: str = ""
    databricks_api_format: str = ""
    azure_anthropic_endpoint: str = ""
    azure_anthropic_api_key: str = ""
    azure_anthropic_version: str = ""
    azure_anthropic_model: str = ""
    azure_openai_endpoint: str = ""
    azure_openai_api_key: str = ""
    azure_openai_deployment: str = ""
    azure_openai_api_version: str = "2024-10-21"
    openai_api_key: str = ""
    openai_endpoint: str = "https://api.openai.com/v1/chat/completions"
    openai_model: str = "gpt-4o"
    openrouter_api_key: str = ""
    openrouter_model: str = "openai/gpt-4o-mini"
    openrouter_endpoint: str = "https://openrouter.ai/api/v1/chat/completions"
    openrouter_referer: str = "https://github.com/lynkr"
    openrouter_title: str = "Lynkr"
    openai_compatible_endpoint: str = ""
    openai_compatible_api_key: str = ""
    openai_compatible_model: str = ""
    ollama_endpoint: str = "http://localhost:11434"
    ollama_model: str = "qwen2.5-coder:7b"
    ollama_timeout_ms: int = 120000
    ollama_keep_alive: str = ""
    send_user_id: bool = True
    model_aliases: str = ""
    model_capabilities_file: str = ""
    host_profiles_file: str = ""
    session_db_path: str = "data/lynkr.db"
    database_url: str = ""
    redis_url: str = ""
    prompt_cache_enabled: bool = True
    prompt_cache_max_entries: int = 1000
    prompt_cache_ttl_ms: int = 300000
    workspace_root: str = ""
    tool_execution_mode: str = "server"
    server_tools: str = "auto"
    policy_max_steps: int = 8
    policy_max_tool_calls: int = 12
    policy_max_duration_ms: int = 300000
    policy_disallowed_tools: tuple[str, ...] = ()
    policy_file_blocked_paths: tuple[str, ...] = ()
    policy_safe_commands_enabled: bool = True
    policy_tool_dedup_window_ms: int = 600000
    tool_result_max_chars: int = 50000
    sandbox_enabled: bool = True
    sandbox_runtime: str = "auto"
    sandbox_image: str = ""
    sandbox_allow_networking: bool = False
    sandbox_timeout_ms: int = 20000
    sandbox_passthrough_env: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "TERM", "HOME")
    shell_allow_unsandboxed: bool = False
    shell_max_output_bytes: int = 100000
    mcp_manifest_dirs: str = "~/.claude/mcp"
    mcp_server_manifest: str = ""
    mcp_start: str = "boot"
    mcp_tool_allowlist: tuple[str, ...] = ()
    mcp_call_timeout_ms: int = 60000
    mcp_startup_timeout_ms: int = 30000
    workspace_test_command: str = ""
    workspace_test_args: tuple[str, ...] = ()
    workspace_test_timeout_ms: int = 600000
    workspace_test_sandbox: Literal["auto", "always", "never"] = "auto"
    workspace_test_coverage_files: tuple[str, ...] = ("coverage/coverage-summary.json",)
    workspace_test_profiles: str = ""
    index_max_file_bytes: int = 1024**2
    index_write_claude_md: bool = True
    git_author_name: str = ""
    git_author_email: str = ""
    git_http_token: str = ""
    git_http_username: str = "x-access-token"
    git_ssh_key_path: str = ""
    policy_git_allow_push: bool = False
    policy_git_require_tests: bool = False
    policy_git_test_command: str = ""
    policy_git_commit_regex: str = ""
    web_search_endpoint: str = ""
    web_search_api_key: str = ""
    web_search_allowed_hosts: tuple[str, ...] = ()
    web_search_timeout_ms: int = 10000
    web_fetch_body_preview_max: int = 10000
    web_fetch_allow_private: bool = False
    metrics_enabled: bool = True
    metrics_public: bool = False
    prometheus_multiproc_dir: str = ""
    health_check_enabled: bool = True
    health_deep_cache_ms: int = 10000
    request_logging_enabled: bool = True
    log_level: str = "info"
    session_store_enabled: bool = True
    memory_threshold: float = 0.85
    heap_threshold: float = 0.90
    active_requests_threshold: int = 0
    max_queue_ms: int = 0
    max_in_flight_streams: int = 0
    prefer_ollama: bool = False
    fallback_enabled: bool = True
    fallback_provider: str = "databricks"
    routing_rules_file: str = ""
    ollama_max_tools: int = 3
    openrouter_max_tools: int = 15
    retry_max_retries: int = 3
    retry_initial_delay_ms: int = 1000
    retry_max_delay_ms: int = 30000
    retry_budget_ms: int = 20000
    breaker_failure_threshold: int = 5
    breaker_success_threshold: int = 2
    breaker_recovery_timeout_ms: int = 60000

    @property
    def request_concurrency_cap(self) -> int:
        """Model requests allowed in flight per worker; the rest get 529."""
        return self.max_concurrent_requests or max(1, self.threads - 4)

    @property
    def is_loopback(self) -> bool:
        """Whether the bind address only accepts local connections."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:  # a host name: only "localhost" is known to be local
            return False

    def secrets(self) -> list[str]:
        """Every secret value configured — secret settings, and the userinfo and password of any URL
        setting — for redaction from logs, client answers and rows."""
        values: list[str] = []
        for setting in SETTINGS:
            value = getattr(self, setting.attr)
            if setting.secret:
                values.extend(value if isinstance(value, tuple) else [value])
            if isinstance(value, str) and "://" in value and "@" in value:
                parts = urlsplit(value)
                values.append(parts.netloc.rpartition("@")[0])
                # A bare password is masked wherever it appears only when it is long enough not to
                # be an everyday word ("lynkr" would mask every logger name); in a URL the
                # userinfo pattern masks it whatever its length.
                if parts.password and len(parts.password) >= MIN_BARE_PASSWORD:
                    values.append(parts.password)
        return [v for v in values if v and len(v) >= 4]

    def masked(self) -> dict[str, Any]:
        """Every setting by variable name, secrets masked, for ``lynkr check``."""
        return {s.env: mask(getattr(self, s.attr)) if s.secret else getattr(self, s.attr) for s in SETTINGS}


MIN_BARE_PASSWORD = 8


def mask(value: Any) -> str:
    """Show only that a secret is set, and its last four characters when it is long."""
    if isinstance(value, tuple):
        return ",".join(mask(v) for v in value)
    if not value:
        return ""
    text = str(value)
    return "****" + text[-4:] if len(text) >= 12 else "****"


def load_config(env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env") -> Config:
    """Read the settings from ``env`` (default ``os.environ``) over an optional ``.env`` file.

    Raises :class:`ConfigError` naming the variable when a value is malformed or unsafe.
    """
    source: dict[str, str] = {}
    if dotenv and Path(dotenv).is_file():
        source.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    source.update(os.environ if env is None else env)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = source.get(setting.env)
        if raw is None or raw == "":
            continue
        try:
            values[setting.attr] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.env}={raw!r} is not valid: {exc}; set {setting.env} to "
                              f"a valid value or unset it (default: {setting.default!r}).") from exc
    config = Config(**values)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-setting checks; raises :class:`ConfigError` with what to set."""
    if not config.is_loopback and not (config.api_keys or config.admin_keys) and not config.allow_open:
        raise ConfigError(
            f"Refusing to listen on {config.host} without API keys: set LYNKR_API_KEYS to a "
            "comma-separated list of keys, or LYNKR_ALLOW_OPEN=true to run open on purpose."
        )
    if config.workers < 0:
        raise ConfigError("WEB_CONCURRENCY must be 0 (one worker per usable CPU) or a number of workers.")
    if config.threads < 2:
        raise ConfigError("LYNKR_THREADS must be at least 2 so health checks are never starved.")
    if (config.default_price_input is None) != (config.default_price_output is None):
        raise ConfigError("Set both DEFAULT_PRICE_INPUT and DEFAULT_PRICE_OUTPUT (USD per million tokens), "
                          "or neither.")
    if config.sandbox_runtime not in {"auto", "bubblewrap", "docker"}:
        raise ConfigError("MCP_SANDBOX_RUNTIME must be auto, bubblewrap or docker.")
    if config.sandbox_runtime == "docker" and not config.sandbox_image:
        raise ConfigError("MCP_SANDBOX_RUNTIME=docker needs MCP_SANDBOX_IMAGE (an image with bash).")
    if config.mcp_start not in {"boot", "lazy"}:
        raise ConfigError("MCP_START must be boot or lazy.")
    if config.workspace_test_sandbox not in {"auto", "always", "never"}:
        raise ConfigError("WORKSPACE_TEST_SANDBOX must be auto, always or never.")
    if config.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError("LOG_LEVEL must be one of debug, info, warning or error.")


# Set by the Docker image (HOST=0.0.0.0, SESSION_DB_PATH on its volume): .env.example shows them
# commented out, so `docker run --env-file .env.example` does not rebind the container to loopback.
IMAGE_SETTINGS = frozenset({"HOST", "SESSION_DB_PATH"})


def env_example() -> str:
    """The text of ``.env.example``: every variable with its default and unit."""
    lines = ["# Lynkr settings. Durations are in milliseconds, as in the Node Lynkr.", ""]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        elif default is None:
            default = ""
        lines.append(f"# {setting.doc}")
        lines.append(f"{'# ' if setting.env in IMAGE_SETTINGS else ''}{setting.env}={default}")
    return "\n".join(lines) + "\n"


# Every Config field is declared in SETTINGS with the same default; this guards the two from drifting.
assert {f.name for f in fields(Config)} == {s.attr for s in SETTINGS}
assert all(getattr(Config(), s.attr) == s.default for s in SETTINGS)
