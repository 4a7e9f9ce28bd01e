"""What ``lynkr init`` can learn from an Ollama server: is it answering, which models it has,
which of them take tools (``/api/show``'s ``capabilities``, Ollama 0.6 and later).

Only reads; never pulls a model. Every failure is an answer (not reachable, tools unknown),
not an exception, since the wizard goes on and prints what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

TIMEOUT_S = 3.0
INSTALL_COMMAND = "curl -fsSL https://ollama.com/install.sh | sh"


@dataclass(frozen=True)
class OllamaModel:
    """A model the server has; ``tools`` is None when the server does not say."""

    name: str
    tools: bool | None


@dataclass
class OllamaStatus:
    """What the server answered."""

    endpoint: str
    reachable: bool
    version: str | None = None
    models: list[OllamaModel] = field(default_factory=list)

    @property
    def tool_models(self) -> list[str]:
        """Names of the models that take tools."""
        return [m.name for m in self.models if m.tools]


def probe_ollama(endpoint: str, timeout: float = TIMEOUT_S) -> OllamaStatus:
    """Ask ``endpoint`` for its version, models and each model's capabilities."""
    base = endpoint.rstrip("/")
    try:
        version = requests.get(base + "/api/version", timeout=timeout).json().get("version")
        tags = requests.get(base + "/api/tags", timeout=timeout).json()
    except (requests.RequestException, ValueError):
        return OllamaStatus(endpoint, reachable=False)
    names = [str(m.get("name") or m.get("model")) for m in tags.get("models") or [] if isinstance(m, dict)]
    return OllamaStatus(endpoint, True, version, [OllamaModel(name, _takes_tools(base, name, timeout))
                                                  for name in names])


def _takes_tools(base: str, model: str, timeout: float) -> bool | None:
    try:
        response = requests.post(base + "/api/show", json={"model": model}, timeout=timeout)
        capabilities = response.json().get("capabilities") if response.ok else None
    except (requests.RequestException, ValueError):
        return None
    return None if capabilities is None else "tools" in capabilities


def install_commands(model: str) -> list[str]:
    """The commands that install Ollama, start it and pull ``model`` (printed, never run)."""
    return [INSTALL_COMMAND, "ollama serve", f"ollama pull {model}"]
