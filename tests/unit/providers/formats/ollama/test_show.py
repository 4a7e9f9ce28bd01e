"""What an Ollama model can do: its capabilities list, else its template, else its name."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.ollama.show import ModelFeatures, features_from_name, features_from_show


@pytest.mark.parametrize(("body", "expected"), [
    ({"capabilities": ["completion", "tools", "thinking"], "template": ""},
     ModelFeatures(True, True, "capabilities", vision=False)),
    ({"capabilities": ["completion", "vision"]}, ModelFeatures(False, False, "capabilities", vision=True)),
    ({"capabilities": ["completion", 5]}, ModelFeatures(False, False, "capabilities", vision=False)),
    ({"capabilities": [], "template": "{{ .Tools }}"}, ModelFeatures(False, False, "capabilities", vision=False)),
    ({"template": "{{- if .Tools }}{{ .Tools }}{{ end }}{{ if .Think }}"}, ModelFeatures(True, True, "template")),
    ({"template": "{{ .Prompt }}"}, ModelFeatures(False, False, "template")),
    ({"template": ""}, ModelFeatures(True, False, "name")),
    ({}, ModelFeatures(True, False, "name")),
    ("not a dict", ModelFeatures(True, False, "name")),
])
def test_features_from_show(body: Any, expected: ModelFeatures) -> None:
    assert features_from_show(body, "qwen2.5-coder:7b") == expected


@pytest.mark.parametrize(("model", "tools", "thinking"), [
    ("qwen2.5-coder:7b", True, False),
    ("library/llama3.1:8b", True, False),
    ("QWEN3:30b", True, True),
    ("gpt-oss:20b", True, True),
    ("deepseek-r1:14b", False, True),
    ("phi3:mini", False, False),
    ("llama3:8b", False, False),
])
def test_features_from_name(model: str, tools: bool, thinking: bool) -> None:
    assert features_from_name(model) == ModelFeatures(tools, thinking, "name")
