"""What each upstream model and each Anthropic-format host accepts — data, not logic.

``model_capabilities(name)`` looks a model up by the name actually sent upstream (patterns
such as ``gpt-5*`` or ``*claude-sonnet-4-5*``), so behaviour follows the model called, not
the name the client asked for. A model the table does not know has no context window: nothing
is refused locally for its size, and the upstream's own overflow answer is mapped instead.
``host_profile(name)`` says what an Anthropic-format host (Databricks, Azure Anthropic) takes
of Claude Code's newest request fields. Both tables can
be overridden by configuration (``MODEL_CAPABILITIES`` / ``HOST_PROFILES``, JSON files).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelCapabilities:
    """Limits and parameter quirks of one upstream model."""

    # None: the model is not in the table, so no window is assumed; the upstream decides.
    context_window: int | None = None
    max_output_tokens: int = 16_384
    max_tokens_param: str = "max_tokens"  # o-series and gpt-5 want "max_completion_tokens"
    accepts_temperature: bool = True
    vision: bool = True
    tools: bool = True
    parallel_tool_calls: bool = True
    reasoning_effort: bool = False  # takes reasoning_effort / reasoning.effort
    reasoning_replay: bool = False  # wants prior reasoning back as reasoning_content
    text_tool_calls: bool = False  # may print tool calls as text that we parse
    pdf_input: bool = False  # takes PDF documents as file parts


_CLAUDE = {"context_window": 200_000, "vision": True, "pdf_input": True}

# Ordered: the first matching pattern wins. Patterns match the upstream model name, lowercased.
MODEL_TABLE: list[tuple[str, dict[str, Any]]] = [
    ("*claude-opus-4-0*", {**_CLAUDE, "max_output_tokens": 32_000}),
    ("*claude-opus-4-1*", {**_CLAUDE, "max_output_tokens": 32_000}),
    ("*claude-opus-4", {**_CLAUDE, "max_output_tokens": 32_000}),
    ("*claude-opus-4-2025*", {**_CLAUDE, "max_output_tokens": 32_000}),
    ("*claude-opus-*", {**_CLAUDE, "max_output_tokens": 64_000}),
    ("*claude-sonnet-*", {**_CLAUDE, "max_output_tokens": 64_000}),
    ("*claude-haiku-4*", {**_CLAUDE, "max_output_tokens": 64_000}),
    ("*claude-3-7-sonnet*", {**_CLAUDE, "max_output_tokens": 64_000}),
    ("*claude-3-5-*", {**_CLAUDE, "max_output_tokens": 8_192}),
    ("*claude*", {**_CLAUDE, "max_output_tokens": 32_000}),
    ("*gpt-5*", {"context_window": 400_000, "max_output_tokens": 128_000,
                 "max_tokens_param": "max_completion_tokens", "accepts_temperature": False,
                 "reasoning_effort": True, "pdf_input": True}),
    ("*gpt-4.1*", {"context_window": 1_047_576, "max_output_tokens": 32_768, "pdf_input": True}),
    ("*gpt-4o*", {"context_window": 128_000, "max_output_tokens": 16_384, "pdf_input": True}),
    ("o[134]*", {"context_window": 200_000, "max_output_tokens": 100_000,
                 "max_tokens_param": "max_completion_tokens", "accepts_temperature": False,
                 "reasoning_effort": True}),
    ("*gpt-oss*", {"context_window": 131_072, "max_output_tokens": 32_768, "vision": False,
                   "reasoning_effort": True}),
    ("*deepseek-reasoner*", {"context_window": 128_000, "max_output_tokens": 64_000,
                             "vision": False, "reasoning_replay": True,
                             "accepts_temperature": False}),
    ("*deepseek*", {"context_window": 128_000, "max_output_tokens": 8_192, "vision": False}),
    ("*kimi-*", {"context_window": 262_144, "max_output_tokens": 32_768, "vision": False,
                 "reasoning_replay": True}),
    ("*gemini*", {"context_window": 1_048_576, "max_output_tokens": 65_536, "pdf_input": True}),
    ("*qwen*", {"context_window": 32_768, "max_output_tokens": 8_192, "vision": False,
                "text_tool_calls": True}),
    ("*llama*", {"context_window": 131_072, "max_output_tokens": 8_192, "vision": False,
                 "text_tool_calls": True}),
    ("*mistral*", {"context_window": 131_072, "max_output_tokens": 8_192, "vision": False}),
]


@dataclass(frozen=True)
class HostProfile:
    """What an Anthropic-format host accepts of the Messages API."""

    name: str
    system_turns: bool = True  # role:"system" turns inside messages
    adaptive_thinking: bool = True  # thinking: {"type": "adaptive"}
    deferred_tools: bool = True  # defer_loading tools, ToolSearch, tool_reference blocks
    output_format: bool = True  # structured outputs: output_config.format (a JSON schema)
    # Top-level request fields forwarded; None forwards every field.
    fields: frozenset[str] | None = None
    # anthropic-beta flags forwarded; None forwards every flag.
    betas: frozenset[str] | None = None


CORE_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking",
})

HOST_PROFILES: dict[str, HostProfile] = {
    # Anthropic's own API: everything is forwarded untouched.
    "anthropic": HostProfile(name="anthropic"),
    # Databricks' Anthropic Messages endpoint lags the API: no system turns, no adaptive
    # thinking, none of the 2025-26 request fields, and a short beta list.
    "databricks": HostProfile(
        name="databricks",
        system_turns=False,
        adaptive_thinking=False,
        deferred_tools=False,
        output_format=False,
        fields=CORE_FIELDS,
        betas=frozenset({"interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"}),
    ),
    # Azure AI Foundry's Claude: close to the API, but without the newest betas.
    "azure-anthropic": HostProfile(
        name="azure-anthropic",
        system_turns=False,
        adaptive_thinking=False,
        deferred_tools=False,
        output_format=False,
        fields=CORE_FIELDS | {"context_management"},
        betas=frozenset({
            "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
            "context-management-2025-06-27", "token-efficient-tools-2025-02-19",
        }),
    ),
}


class CapabilityTable:
    """Model capabilities and host profiles, with configured overrides applied."""

    def __init__(
        self,
        model_overrides: dict[str, dict[str, Any]] | None = None,
        host_overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self._overrides = [(p.lower(), v) for p, v in (model_overrides or {}).items()]
        for pattern, values in self._overrides:
            try:
                ModelCapabilities(**values)
            except TypeError as exc:
                raise ValueError(f"model {pattern!r}: {exc}") from exc
        self._hosts = dict(HOST_PROFILES)
        for name, changes in (host_overrides or {}).items():
            base = self._hosts.get(name, HostProfile(name=name))
            self._hosts[name] = dataclasses.replace(base, **_host_fields(changes))
        self._memo: dict[str, ModelCapabilities] = {}

    def model(self, name: str) -> ModelCapabilities:
        """Capabilities of the upstream model ``name`` (defaults when nothing matches).

        A configured override changes only the fields it names of the built-in entry.
        """
        caps = self._memo.get(name)
        if caps is None:
            lowered = name.lower()
            base = next((v for p, v in MODEL_TABLE if fnmatch.fnmatchcase(lowered, p)), {})
            override = next((v for p, v in self._overrides if fnmatch.fnmatchcase(lowered, p)), {})
            caps = self._memo[name] = ModelCapabilities(**{**base, **override})
        return caps

    def host(self, name: str) -> HostProfile:
        """The profile of an Anthropic-format host; unknown names forward everything."""
        return self._hosts.get(name) or HostProfile(name=name)


def _host_fields(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    for key in ("fields", "betas"):
        if out.get(key) is not None:
            out[key] = frozenset(out[key])
    return out
