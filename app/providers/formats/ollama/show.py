"""What an Ollama model can do, from its ``/api/show`` answer — or, failing that, its name.

Ollama refuses a chat request with ``tools`` for a model whose template has no tool support
(400 ``"<model>" does not support tools``), and one with ``think: true`` for a model that
cannot think, so both must be known before the request is built. Servers since 0.6 list
``capabilities`` (``"completion"``, ``"tools"``, ``"thinking"``, ``"vision"``…); older ones
only return the template, which mentions ``.Tools`` when the model takes tools (and have no
``think`` parameter at all). When ``/api/show`` cannot be asked, a short list of model
families known to call tools decides. Whether a model sees images is taken only from
``capabilities``; otherwise the capability table's row for the model's name stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Families whose Ollama templates take tools (name prefixes, after any namespace "user/").
TOOL_FAMILIES = (
    "qwen2.5", "qwen3", "qwq", "llama3.1", "llama3.2", "llama3.3", "llama4", "mistral-nemo",
    "mistral-small", "mistral-large", "devstral", "command-r", "hermes3", "granite3", "gpt-oss",
    "firefunction", "smollm2",
)
THINKING_FAMILIES = ("qwen3", "deepseek-r1", "gpt-oss", "magistral", "qwq")
_TEMPLATE_TOOLS = re.compile(r"\.Tools\b|\btools\b")
_TEMPLATE_THINKING = re.compile(r"\.Think(?:Level)?\b|\.IsThinkSet\b")


@dataclass(frozen=True)
class ModelFeatures:
    """Whether a model takes ``tools``, ``think`` and images, and how that was decided."""

    tools: bool
    thinking: bool
    source: str  # "capabilities" | "template" | "name"
    # Only capabilities say whether a model sees images; None: not said (the capability table decides).
    vision: bool | None = None


def features_from_show(body: Any, model: str) -> ModelFeatures:
    """Features from an ``/api/show`` body: its ``capabilities``, else its ``template``, else the name."""
    if not isinstance(body, dict):
        return features_from_name(model)
    capabilities = body.get("capabilities")
    if isinstance(capabilities, list):
        listed = {c for c in capabilities if isinstance(c, str)}
        return ModelFeatures("tools" in listed, "thinking" in listed, "capabilities", vision="vision" in listed)
    template = body.get("template")
    if isinstance(template, str) and template:
        return ModelFeatures(bool(_TEMPLATE_TOOLS.search(template)), bool(_TEMPLATE_THINKING.search(template)),
                             "template")
    return features_from_name(model)


def features_from_name(model: str) -> ModelFeatures:
    """Features guessed from the model name (``qwen2.5-coder:7b``, ``library/llama3.1:8b``)."""
    family = model.lower().rsplit("/", 1)[-1]
    return ModelFeatures(family.startswith(TOOL_FAMILIES), family.startswith(THINKING_FAMILIES), "name")
