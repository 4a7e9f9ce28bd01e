"""Fixtures for format tests: replaying events through the official ``anthropic`` SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent


def sdk_accumulate(events: list[dict[str, Any]]) -> Any:
    """Fold events the way the SDK's ``MessageStream`` does; returns its final message.

    Also checks that every tool block's streamed JSON parses strictly (the SDK parses it in
    partial mode, which would accept a truncated object).
    """
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        if event["type"] in ("ping", "error"):
            continue
        parsed = construct_type(type_=RawMessageStreamEvent, value=event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    for buffer in json_bufs.values():
        assert isinstance(orjson.loads(buffer), dict)
    return snapshot


@pytest.fixture(scope="session")
def make_sdk_message() -> Callable[[list[dict[str, Any]]], Any]:
    """The SDK accumulation, as a fixture."""
    return sdk_accumulate
