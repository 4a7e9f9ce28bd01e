"""Ollama errors in Anthropic's terms, and what a model can do from its /api/show answer."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.formats.ollama.convert import ModelFeatures, features_from_name, features_from_show, upstream_error


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"error": 'model "llama9" not found, try pulling it first'},
         (404, "not_found_error", 'model "llama9" not found, try pulling it first')),
        # Some versions answer 400 or 500 for a missing model; the wording decides.
        (500, {"error": "model 'qwen9:7b' not found"}, (404, "not_found_error", "model 'qwen9:7b' not found")),
        (400, {"error": "input length (40000 tokens) exceeds the model's maximum context length (32768 tokens)"},
         (400, "invalid_request_error", "prompt is too long: 40000 tokens > 32768 maximum")),
        (500, {"error": "prompt too long; exceeded max context length by 120 tokens"},
         (400, "invalid_request_error", "prompt is too long: 4216 tokens > 4096 maximum")),
        (400, {"error": "the input length exceeds the context length"},
         (400, "invalid_request_error", "prompt is too long: 4097 tokens > 4096 maximum")),
        (400, {"error": '"gemma3:12b" does not support tools'},
         (400, "invalid_request_error", '"gemma3:12b" does not support tools')),
        (503, {"error": "server busy, please try again.  maximum pending requests exceeded"},
         (503, "overloaded_error", "server busy, please try again.  maximum pending requests exceeded")),
        (500, b"llama runner process has terminated: exit status 2",
         (500, "api_error", "llama runner process has terminated: exit status 2")),
        (502, None, (500, "api_error", "Ollama returned HTTP 502")),
    ],
)
def test_upstream_error(status: int, body: Any, expected: tuple[int, str, str]) -> None:
    assert upstream_error(status, body, context_window=4096) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"capabilities": ["completion", "tools", "thinking"]},
         ModelFeatures(True, True, "capabilities", vision=False)),
        ({"capabilities": ["completion", "vision"], "template": "{{ .Tools }}"},
         ModelFeatures(False, False, "capabilities", vision=True)),
        ({"template": "{{- if .Tools }}<tools>{{ range .Tools }}{{ . }}{{ end }}</tools>{{ end }}"},
         ModelFeatures(True, False, "template")),
        ({"template": "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}"}, ModelFeatures(False, False, "template")),
        ({"template": "{{ if .Think }}<think>{{ end }}{{ .Prompt }}"}, ModelFeatures(False, True, "template")),
        ({}, ModelFeatures(True, False, "name")),
        ("not a dict", ModelFeatures(True, False, "name")),
    ],
)
def test_features_from_show(body: Any, expected: ModelFeatures) -> None:
    assert features_from_show(body, "qwen2.5-coder:7b") == expected


@pytest.mark.parametrize(
    ("model", "tools", "thinking"),
    [
        ("qwen2.5-coder:7b", True, False),
        ("llama3.1:8b", True, False),
        ("library/mistral-nemo:latest", True, False),
        ("qwen3:30b-a3b", True, True),
        ("gpt-oss:20b", True, True),
        ("deepseek-r1:8b", False, True),
        ("llama3:8b", False, False),
        ("codellama:13b", False, False),
        ("gemma3:12b", False, False),
    ],
)
def test_features_from_name(model: str, tools: bool, thinking: bool) -> None:
    assert features_from_name(model) == ModelFeatures(tools, thinking, "name")
