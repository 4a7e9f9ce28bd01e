from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.config import Config, load_config
from app.onboarding.init import Defaults, TerminalPrompter, UnknownProvider, run_init
from tests.fakes.ollama_upstream import FakeOllama


def wizard(tmp_path: Path, config: Config, *, answers: str | None = None, force: bool = False,
           provider: str | None = None) -> tuple[int, str, list[Config]]:
    out = io.StringIO()
    checked: list[Config] = []
    prompter = Defaults(force=force) if answers is None else TerminalPrompter(io.StringIO(answers), out)

    def check(loaded: Config) -> int:
        checked.append(loaded)
        return 0

    code = run_init(config, prompter, out, provider=provider, env_path=tmp_path / ".env", check=check,
                    reload=lambda: load_config(env={}, dotenv=tmp_path / ".env"))
    return code, out.getvalue(), checked


def test_defaults_pick_a_model_that_takes_tools(tmp_path: Path) -> None:
    with FakeOllama(models=["gemma3:4b", "llama3.1:8b"]) as fake:
        fake.capabilities_by_model["gemma3:4b"] = ["completion"]
        code, out, checked = wizard(tmp_path, Config(ollama_endpoint=fake.url), provider="ollama")
    assert code == 0
    assert checked[0].model_provider == "ollama"
    assert checked[0].ollama_model == "llama3.1:8b"
    assert "  gemma3:4b: no tools\n  llama3.1:8b: takes tools\n" in out


def test_a_value_with_spaces_is_quoted_and_read_back(tmp_path: Path) -> None:
    code, _, checked = wizard(tmp_path, Config(), answers="databricks\nhttps://x.example\ntok en\"1\n")
    assert code == 0
    assert checked[0].databricks_api_base == "https://x.example"
    assert checked[0].databricks_api_key == 'tok en"1'
    assert 'DATABRICKS_API_KEY="tok en\\"1"\n' in (tmp_path / ".env").read_text()


def test_missing_settings_with_yes_become_to_dos(tmp_path: Path) -> None:
    _, out, _ = wizard(tmp_path, Config(), provider="openrouter")
    assert "  to do: set OPENROUTER_API_KEY in .env" in out
    assert (tmp_path / ".env").read_text().endswith("MODEL_PROVIDER=openrouter\n")


def test_force_overwrites_and_keeps_a_backup(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OLD=1\n")
    wizard(tmp_path, Config(openrouter_api_key="sk-or"), provider="openrouter", force=True)
    assert (tmp_path / ".env.bak").read_text() == "OLD=1\n"
    assert "OPENROUTER_API_KEY=sk-or\n" in (tmp_path / ".env").read_text()


def test_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownProvider):
        wizard(tmp_path, Config(), provider="nope")
    assert not (tmp_path / ".env").exists()
