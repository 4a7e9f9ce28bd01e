"""Configuration: names, defaults, units, and one-sentence errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import IMAGE_SETTINGS, SETTINGS, Config, ConfigError, env_example, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_bind_loopback_and_use_databricks_and_sqlite() -> None:
    config = load_config({}, dotenv=None)
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.model_provider == "databricks"
    assert config.session_db_path == "data/lynkr.db"
    assert config.graceful_shutdown_timeout_ms == 30000
    assert config.request_json_limit == 32 * 1024 * 1024


def test_node_lynkr_names_and_units_are_read() -> None:
    config = load_config({
        "MODEL_PROVIDER": "azure-anthropic", "PORT": "9000", "GRACEFUL_SHUTDOWN_TIMEOUT": "45000",
        "REQUEST_JSON_LIMIT": "1mb", "LYNKR_API_KEYS": "a-key-1234, b-key-5678", "METRICS_ENABLED": "false",
    }, dotenv=None)
    assert config.model_provider == "azure-anthropic"
    assert config.port == 9000
    assert config.graceful_shutdown_timeout_ms == 45000
    assert config.request_json_limit == 1024 * 1024
    assert config.api_keys == ("a-key-1234", "b-key-5678")
    assert config.metrics_enabled is False


@pytest.mark.parametrize(("env", "variable"), [
    ({"PORT": "eighty"}, "PORT"),
    ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"),
    ({"MODEL_PROVIDER": "bedrock"}, "MODEL_PROVIDER"),
    ({"REQUEST_JSON_LIMIT": "lots"}, "REQUEST_JSON_LIMIT"),
])
def test_malformed_value_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env, dotenv=None)
    message = str(info.value)
    assert message.startswith(f"{variable}=")
    assert f"set {variable}" in message
    assert "\n" not in message


def test_public_bind_without_keys_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match=r"LYNKR_API_KEYS .* LYNKR_ALLOW_OPEN=true"):
        load_config({"HOST": "0.0.0.0"}, dotenv=None)
    assert load_config({"HOST": "0.0.0.0", "LYNKR_ALLOW_OPEN": "true"}, dotenv=None).allow_open
    assert load_config({"HOST": "0.0.0.0", "LYNKR_API_KEYS": "k-123456"}, dotenv=None).api_keys


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7000\nMODEL_DEFAULT='databricks-claude-opus-4-5'\n")
    config = load_config({"PORT": "7001"}, dotenv=dotenv)
    assert config.port == 7001
    assert config.model_default == "databricks-claude-opus-4-5"


def test_masked_view_hides_secrets() -> None:
    config = Config(databricks_api_key="dapi-super-secret-1234", api_keys=("sk-very-secret-abcd",))
    masked = config.masked()
    assert masked["DATABRICKS_API_KEY"] == "****1234"
    assert masked["LYNKR_API_KEYS"] == "****abcd"
    assert "super-secret" not in str(masked)
    assert config.secrets() == ["sk-very-secret-abcd", "dapi-super-secret-1234"]


def test_env_example_lists_every_variable_and_matches_the_committed_file() -> None:
    text = env_example()
    for setting in SETTINGS:
        commented = "# " if setting.env in IMAGE_SETTINGS else ""  # the Docker image sets those
        assert f"\n{commented}{setting.env}=" in text
    assert "\n# HOST=127.0.0.1\n" in text
    assert (ROOT / ".env.example").read_text() == text


def test_secrets_include_the_userinfo_of_every_url_setting() -> None:
    config = Config(databricks_api_base="https://bob:hunter22@example.com", database_url="postgresql://lynkr:lynkr@db/x")
    secrets = config.secrets()
    assert {"hunter22", "bob:hunter22", "lynkr:lynkr"} <= set(secrets)
    assert "lynkr" not in secrets  # a short bare password would mask every "lynkr" in the logs
