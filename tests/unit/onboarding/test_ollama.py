from __future__ import annotations

import socket

from app.onboarding.ollama import OllamaModel, install_commands, probe_ollama
from tests.fakes.ollama_upstream import FakeOllama


def test_models_and_which_take_tools() -> None:
    with FakeOllama(models=["qwen2.5-coder:7b", "gemma3:4b"]) as fake:
        fake.capabilities_by_model["gemma3:4b"] = ["completion", "vision"]
        status = probe_ollama(fake.url + "/")
    assert status.reachable
    assert status.version == "0.12.0"
    assert status.models == [OllamaModel("qwen2.5-coder:7b", True), OllamaModel("gemma3:4b", False)]
    assert status.tool_models == ["qwen2.5-coder:7b"]


def test_an_old_server_leaves_tools_unknown() -> None:
    with FakeOllama(capabilities=None) as fake:
        assert probe_ollama(fake.url).models == [OllamaModel("qwen2.5-coder:7b", None)]


def test_nothing_answering_is_an_answer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        status = probe_ollama(f"http://127.0.0.1:{unused.getsockname()[1]}", timeout=1)
    assert (status.reachable, status.models) == (False, [])


def test_install_commands_are_printed_not_run() -> None:
    assert install_commands("llama3.1:8b") == ["curl -fsSL https://ollama.com/install.sh | sh", "ollama serve",
                                               "ollama pull llama3.1:8b"]
