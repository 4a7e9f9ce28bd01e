from __future__ import annotations

import pytest

from app.config import Config
from app.onboarding.claude import OPEN_MODE_KEY, claude_env, client_key, gateway_url, shell_exports
from app.providers.capabilities import CapabilityTable

TABLE = CapabilityTable()


def test_a_claude_provider_gets_no_compact_window() -> None:
    config = Config(port=8123, api_keys=("sk-one", "sk-two"), admin_keys=("sk-admin",))
    assert claude_env(config, TABLE) == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8123", "ANTHROPIC_API_KEY": "sk-one",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1"}


@pytest.mark.parametrize(("config", "window"), [
    (Config(model_provider="ollama", ollama_model="qwen2.5-coder:7b"), "32768"),
    (Config(model_provider="ollama", ollama_model="llama3.1:8b"), "131072"),
    (Config(model_provider="openai", openai_api_key="sk-x", openai_model="gpt-4o"), "128000"),
])
def test_another_model_gets_its_context_window_from_the_capability_table(config: Config, window: str) -> None:
    assert claude_env(config, TABLE)["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == window


def test_a_capability_override_changes_the_window() -> None:
    table = CapabilityTable({"qwen*": {"context_window": 65536}})
    config = Config(model_provider="ollama", ollama_model="qwen3:14b")
    assert claude_env(config, table)["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "65536"


@pytest.mark.parametrize(("host", "url"), [("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://127.0.0.1:8080"),
                                           ("::1", "http://[::1]:8080"), ("10.1.2.3", "http://10.1.2.3:8080")])
def test_the_url_reaches_a_wildcard_bind_on_loopback(host: str, url: str) -> None:
    assert gateway_url(Config(host=host, allow_open=True)) == url


def test_the_key_is_explicit_then_configured_then_a_placeholder() -> None:
    assert client_key(Config(api_keys=("sk-a",)), "sk-explicit") == "sk-explicit"
    assert client_key(Config(admin_keys=("sk-admin",))) == "sk-admin"
    assert client_key(Config()) == OPEN_MODE_KEY


def test_exports_are_quoted_for_a_posix_shell() -> None:
    assert shell_exports({"A": "plain", "B": "it's $HOME"}) == (
        "unset ANTHROPIC_AUTH_TOKEN\nexport A=plain\nexport B='it'\"'\"'s $HOME'\n")

