"""``lynkr init``: choose a provider, check what can be checked, write ``.env``, then probe.

Interactive by default; ``--provider NAME --yes`` takes every default for scripts. For Ollama it
asks the server (``OLLAMA_ENDPOINT``) which models it has and which take tools, and prints the
exact commands to install Ollama or pull a model instead of running a downloader. For the other
providers it asks for the settings they cannot work without. An existing ``.env`` is replaced
only after a yes to "overwrite?" (``--yes`` alone never overwrites; ``--force`` does), and the
old one is kept as ``.env.bak``.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from app.config import Config
from app.onboarding.ollama import OllamaStatus, install_commands, probe_ollama
from app.settings import PROVIDER_NAMES, SETTINGS

BY_ENV = {setting.env: setting for setting in SETTINGS}
PROVIDER_CHOICES = ("ollama", "databricks", "azure-anthropic", "openrouter", "openai", "azure-openai",
                    "openai-compatible")


class Prompter(Protocol):
    """Where answers come from: a person at a terminal, or the defaults."""

    def ask(self, question: str, default: str) -> str:
        """A free answer (``default`` when left empty)."""

    def secret(self, question: str) -> str:
        """An answer that is not echoed."""

    def confirm(self, question: str, default: bool) -> bool:
        """Yes or no."""


class TerminalPrompter:
    """Reads answers from ``stdin`` (without echo for secrets on a terminal)."""

    def __init__(self, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
        self.stdin = stdin
        self.out = out

    def ask(self, question: str, default: str) -> str:
        self.out.write(f"{question} [{default}]: " if default else f"{question}: ")
        self.out.flush()
        answer = self.stdin.readline()
        if not answer:
            raise EOFError(question)
        return answer.strip() or default

    def secret(self, question: str) -> str:
        if self.stdin.isatty():
            return getpass.getpass(f"{question} (not shown): ").strip()
        return self.ask(question, "")

    def confirm(self, question: str, default: bool) -> bool:
        answer = self.ask(f"{question} ({'Y/n' if default else 'y/N'})", "").lower()
        return default if not answer else answer in ("y", "yes")


@dataclass
class Defaults:
    """``--yes``: every question takes its default; ``force`` is the answer to "overwrite?"."""

    force: bool = False

    def ask(self, question: str, default: str) -> str:
        return default

    def secret(self, question: str) -> str:
        return ""

    def confirm(self, question: str, default: bool) -> bool:
        return self.force


class UnknownProvider(ValueError):
    """``--provider`` names no provider."""


@dataclass
class Plan:
    """The settings ``.env`` will get, in order, and what the user still has to do."""

    values: dict[str, str] = field(default_factory=dict)
    todo: list[str] = field(default_factory=list)


def run_init(config: Config, prompter: Prompter, out: TextIO, *, provider: str | None = None,
             env_path: Path = Path(".env"), check: Callable[[Config], int],
             reload: Callable[[], Config]) -> int:
    """The wizard; returns ``check``'s exit code (the same probe as ``lynkr check``)."""
    chosen = provider or _ask_provider(config, prompter, out)
    if chosen not in PROVIDER_NAMES:
        raise UnknownProvider(f"unknown provider {chosen!r}; choose one of {', '.join(PROVIDER_CHOICES)}")
    plan = Plan({"MODEL_PROVIDER": chosen})
    if chosen == "ollama":
        _plan_ollama(config, prompter, out, plan)
    else:
        _plan_settings(config, chosen, prompter, plan)
    if _write_env(env_path, plan, prompter, out):
        out.write(f"wrote {env_path}\n")
    for step in plan.todo:
        out.write(f"  to do: {step}\n")
    out.write("checking the provider (as `lynkr check` does)…\n")
    out.flush()
    code = check(reload())
    out.write("next: `lynkr serve` to start the gateway, `lynkr claude` to run Claude Code through it\n")
    return code


def _ask_provider(config: Config, prompter: Prompter, out: TextIO) -> str:
    out.write("Providers: " + ", ".join(PROVIDER_CHOICES) + "\n")
    default = config.model_provider if config.model_provider in PROVIDER_NAMES else "ollama"
    while True:
        answer = prompter.ask("Provider", default)
        if answer in PROVIDER_NAMES:
            return answer
        out.write(f"  {answer!r} is not a provider\n")


def _plan_ollama(config: Config, prompter: Prompter, out: TextIO, plan: Plan) -> None:
    endpoint = prompter.ask("Ollama endpoint", config.ollama_endpoint)
    plan.values["OLLAMA_ENDPOINT"] = endpoint
    status = probe_ollama(endpoint)
    if not status.reachable:
        out.write(f"Ollama is not answering at {endpoint}. Install and start it, then pull a model:\n")
        for command in install_commands(config.ollama_model):
            out.write(f"    {command}\n")
        plan.values["OLLAMA_MODEL"] = config.ollama_model
        plan.todo.append(f"start Ollama and run `ollama pull {config.ollama_model}`")
        return
    _describe(status, out)
    model = prompter.ask("Model", _default_model(status, config.ollama_model))
    plan.values["OLLAMA_MODEL"] = model
    known = {m.name: m for m in status.models}
    if model not in known:
        out.write(f"{model} is not pulled yet; run:\n    ollama pull {model}\n")
        plan.todo.append(f"run `ollama pull {model}`")
    elif known[model].tools is False:
        out.write(f"warning: {model} does not take tools; Claude Code needs a model that does "
                  f"({', '.join(status.tool_models) or 'none here'})\n")


def _describe(status: OllamaStatus, out: TextIO) -> None:
    out.write(f"Ollama {status.version or '(version unknown)'} is answering at {status.endpoint}\n")
    if not status.models:
        out.write("  it has no model yet\n")
    for model in status.models:
        tools = {True: "takes tools", False: "no tools", None: "tools unknown"}[model.tools]
        out.write(f"  {model.name}: {tools}\n")


def _default_model(status: OllamaStatus, configured: str) -> str:
    tool_models = status.tool_models
    if configured in tool_models or not tool_models:
        return configured
    return tool_models[0]


def _plan_settings(config: Config, provider: str, prompter: Prompter, plan: Plan) -> None:
    from app.factory import capability_table
    from app.providers import build_providers

    bare = Config(model_provider=provider)
    required = build_providers(bare, capability_table(config))[provider].missing_settings()
    for env in required:
        setting = BY_ENV[env]
        current = getattr(config, setting.attr)
        current = ",".join(current) if isinstance(current, tuple) else str(current or "")
        value = current or (prompter.secret(env) if setting.secret else prompter.ask(env, ""))
        if value:
            plan.values[env] = value
        else:
            plan.todo.append(f"set {env} in .env ({setting.doc})")


def _write_env(path: Path, plan: Plan, prompter: Prompter, out: TextIO) -> bool:
    if path.exists():
        if not prompter.confirm(f"{path} exists; overwrite it (the old one is kept as {path.name}.bak)?", False):
            out.write(f"{path} left as it is; these settings were not written:\n")
            for name, value in plan.values.items():
                shown = "****" if BY_ENV[name].secret else value
                out.write(f"    {name}={shown}\n")
            return False
        path.with_name(path.name + ".bak").write_bytes(path.read_bytes())
    lines = ["# Written by `lynkr init`; every setting is listed in .env.example.\n"]
    lines += [f"{name}={_quoted(value)}\n" for name, value in plan.values.items()]
    path.write_text("".join(lines))
    path.chmod(0o600)  # it may hold provider keys
    return True


def _quoted(value: str) -> str:
    if value and all(c.isalnum() or c in "-_.:/@+,=" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

