"""The wire vocabulary stays a subset of the official SDK's: no field or stop reason of our own invention."""

from __future__ import annotations

import typing
from typing import Any

import anthropic.types as sdk
import pytest
from anthropic.types import message_create_params

from app.anthropic import types


@pytest.mark.parametrize(("ours", "theirs"), [
    (types.Message, sdk.Message),
    (types.Usage, sdk.Usage),
    (types.TextBlock, sdk.TextBlock),
    (types.ThinkingBlock, sdk.ThinkingBlock),
    (types.ToolUseBlock, sdk.ToolUseBlock),
])
def test_response_shapes_name_only_sdk_fields(ours: Any, theirs: Any) -> None:
    assert set(ours.__annotations__) - set(theirs.model_fields) == set()


@pytest.mark.parametrize(("ours", "theirs"), [
    (types.Tool, sdk.ToolParam),
    (types.ToolResultBlock, sdk.ToolResultBlockParam),
    (types.MessageParam, sdk.UserMessageParam),
])
def test_request_shapes_name_only_sdk_fields(ours: Any, theirs: Any) -> None:
    assert set(ours.__annotations__) - set(theirs.__annotations__) == set()


def hinted(typed_dict: Any, wrapper: Any) -> set[str]:
    """The keys whose (resolved: our annotations are postponed) hint is wrapped in ``wrapper``."""
    hints = typing.get_type_hints(typed_dict, include_extras=True)
    return {key for key, hint in hints.items() if typing.get_origin(hint) is wrapper}


def test_the_request_requires_what_the_api_requires() -> None:
    ours = set(types.MessagesRequest.__annotations__) - hinted(types.MessagesRequest, typing.NotRequired)
    assert ours == {"model", "max_tokens", "messages"}
    assert hinted(message_create_params.MessageCreateParamsBase, typing.Required) == ours
    assert set(types.MessagesRequest.__annotations__) - {"stream", "temperature", "top_p"} <= set(
        message_create_params.MessageCreateParamsBase.__annotations__)


def test_stop_reasons_are_the_apis() -> None:
    ours = set(typing.get_args(types.StopReason))
    assert ours == {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
    assert ours <= set(typing.get_args(sdk.StopReason))


def test_a_message_in_our_shape_is_one_the_sdk_accepts() -> None:
    message: types.Message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "thinking", "thinking": "hm", "signature": types.SYNTHETIC_SIGNATURE_PREFIX + "x"},
                    {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "a"}}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    parsed = sdk.Message.model_validate(message)
    assert [block.type for block in parsed.content] == ["thinking", "text", "tool_use"]
    assert parsed.usage.output_tokens == 4
    assert types.SYNTHETIC_SIGNATURE_PREFIX == "lynkr-synthetic:"
