"""Golden cases for the Ollama format: tests/golden/ollama/<case>/.

Each case holds ``request.json`` (the client's Anthropic request), ``case.json`` (upstream
model, capability overrides, ``message_id``, ``keep_alive``, ``can_think``),
``upstream_request.json`` (the exact ``/api/chat`` body we send) and either
``upstream_response.json`` with ``expected_message.json`` / ``expected_error.json`` or
``upstream_lines.json`` (parsed NDJSON lines, ``{"__eof__": true}`` to cut the stream) with
``expected_events.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from app.anthropic.events import StreamBuilder, validate_stream
from app.providers.capabilities import CapabilityTable
from app.providers.formats.ollama.convert import StreamTranslator, UpstreamFormatError, from_upstream, to_upstream

GOLDEN = Path(__file__).resolve().parents[4] / "golden" / "ollama"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir())
JSON_CASES = [case for case in CASES if (case / "upstream_response.json").exists()]
STREAM_CASES = [case for case in CASES if (case / "upstream_lines.json").exists()]
TABLE = CapabilityTable()


def load(case: Path, name: str) -> Any:
    return json.loads((case / name).read_text())


def make_setup(case: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The case's request and the settings shared by the translation functions."""
    meta = load(case, "case.json")
    settings = {
        "model": meta["model"],
        "caps": dataclasses.replace(TABLE.model(meta["model"]), **meta.get("capabilities", {})),
        "message_id": meta.get("message_id", "msg_golden"),
        "keep_alive": meta.get("keep_alive"),
        "can_think": meta.get("can_think", True),
    }
    return load(case, "request.json"), settings


def make_upstream_request(case: Path) -> dict[str, Any]:
    request, settings = make_setup(case)
    return to_upstream(request, model=settings["model"], caps=settings["caps"],
                       stream=(case / "upstream_lines.json").exists(), keep_alive=settings["keep_alive"],
                       can_think=settings["can_think"])


def make_message(case: Path) -> dict[str, Any]:
    """The Message from_upstream builds, or ``{"error": [status, type, message]}``."""
    request, settings = make_setup(case)
    try:
        return from_upstream(load(case, "upstream_response.json"), message_id=settings["message_id"],
                             model=request["model"], request=request, caps=settings["caps"])
    except UpstreamFormatError as exc:
        return {"error": [exc.status, exc.error_type, exc.message]}


def make_events(case: Path) -> list[dict[str, Any]]:
    """Replay the case's lines as the provider does: feed each, close() at EOF."""
    request, settings = make_setup(case)
    builder = StreamBuilder(message_id=settings["message_id"], model=request["model"])
    translator = StreamTranslator(builder, request=request, caps=settings["caps"])
    events: list[dict[str, Any]] = []
    for item in load(case, "upstream_lines.json"):
        if item == {"__eof__": True}:
            break
        events += translator.feed(item)
    return events + translator.close()


def expected_message_file(case: Path) -> str:
    return "expected_error.json" if (case / "expected_error.json").exists() else "expected_message.json"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_upstream_request(case: Path) -> None:
    assert make_upstream_request(case) == load(case, "upstream_request.json")


@pytest.mark.parametrize("case", JSON_CASES, ids=lambda case: case.name)
def test_message(case: Path) -> None:
    assert make_message(case) == load(case, expected_message_file(case))


@pytest.mark.parametrize("case", STREAM_CASES, ids=lambda case: case.name)
def test_stream(case: Path, make_sdk_message: Any) -> None:
    events = make_events(case)
    assert events == load(case, "expected_events.json")
    validate_stream(events)
    if events[-1]["type"] == "message_stop":
        message = make_sdk_message(events)
        assert message.stop_reason == events[-2]["delta"]["stop_reason"]


def test_enough_cases() -> None:
    assert len(CASES) >= 15
    assert all((case / "upstream_request.json").exists() for case in CASES)
    assert len(STREAM_CASES) >= 8
