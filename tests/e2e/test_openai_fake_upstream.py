"""The fake OpenAI upstream itself: a clean request passes, and strict mode rejects each thing
the real chat-completions API rejects — so the e2e tests that rely on it can fail."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.anthropic.sse import SSEDecoder
from tests.fakes.openai_rules import Strictness
from tests.fakes.openai_upstream import (
    DEFAULT_TEXT,
    FakeOpenAIUpstream,
    StreamReply,
    text_chunks,
    tool_call_chunks,
)

TOKEN = "sk-fake-self-test-0001"
CALL = {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": '{"path": "a"}'}}
CLEAN: dict[str, Any] = {
    "model": "gpt-4o", "max_tokens": 1024, "stream": True, "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "file a"},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [{"type": "function", "function": {"name": "Read", "description": "Read a file",
                                                "parameters": {"type": "object", "properties": {}}}}],
    "tool_choice": {"type": "function", "function": {"name": "Read"}},
}


def _with(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    body = copy.deepcopy(CLEAN)
    change(body)
    return body


def _msgs(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["messages"]


BROKEN: dict[str, Callable[[dict[str, Any]], Any]] = {  # name: change of CLEAN
    "unknown_role": lambda b: _msgs(b).append({"role": "function", "content": "x"}),
    "unknown_message_key": lambda b: _msgs(b)[1].update(cache_control={"type": "ephemeral"}),
    "reasoning_content": lambda b: _msgs(b)[2].update(reasoning_content="thought"),
    "tool_result_unknown_id": lambda b: _msgs(b)[3].update(tool_call_id="call_2"),
    "tool_result_not_after_call": lambda b: _msgs(b).insert(3, {"role": "user", "content": "wait"}),
    "tool_result_for_older_call": lambda b: _msgs(b).extend([{"role": "assistant", "content": "ok"},
                                                           {"role": "tool", "tool_call_id": "call_1",
                                                            "content": "again"}]),
    "call_without_result": lambda b: _msgs(b).pop(3),
    "call_without_result_at_end": lambda b: _msgs(b).__delitem__(slice(3, None)),
    "arguments_not_string": lambda b: _msgs(b)[2]["tool_calls"][0]["function"].update(arguments={"path": "a"}),
    "arguments_not_json": lambda b: _msgs(b)[2]["tool_calls"][0]["function"].update(arguments="{path: a"),
    "bad_tool_name": lambda b: b["tools"][0]["function"].update(name="mcp__server.tool"),
    "long_tool_name": lambda b: b["tools"][0]["function"].update(name="x" * 65),
    "bad_call_name": lambda b: _msgs(b)[2]["tool_calls"][0]["function"].update(name="a b"),
    "stream_options_without_stream": lambda b: b.pop("stream"),
    "both_max_tokens": lambda b: b.update(max_completion_tokens=10),
    "too_many_stops": lambda b: b.update(stop=["a", "b", "c", "d", "e"]),
    "unknown_part_type": lambda b: _msgs(b)[1]["content"].append({"type": "document", "text": "x"}),
    "image_in_system": lambda b: _msgs(b)[0].update(content=[{"type": "image_url", "image_url": {"url": "x"}}]),
    "unknown_top_level": lambda b: b.update(thinking={"type": "enabled"}),
    "tool_choice_unknown_function": lambda b: b["tool_choice"]["function"].update(name="Write"),
    "tool_choice_without_tools": lambda b: b.pop("tools"),
    "empty_parameters": lambda b: b["tools"][0]["function"].update(parameters={}),
    "non_object_parameters": lambda b: b["tools"][0]["function"].update(parameters={"type": "string"}),
    "unknown_function_key": lambda b: b["tools"][0]["function"].update(input_schema={"type": "object"}),
    "null_user_content": lambda b: _msgs(b)[4].update(content=None),
    "empty_messages": lambda b: b.update(messages=[]),
    "reasoning_effort_on_gpt_4o": lambda b: b.update(reasoning_effort="medium"),
    "max_tokens_over_limit": lambda b: b.update(max_tokens=16_385),
}

# What the 400's message must mention, so that each case fails for its own reason.
REASONS = {
    "unknown_role": "'function'",
    "unknown_message_key": "messages[1].cache_control",
    "reasoning_content": "messages[2].reasoning_content",
    "tool_result_unknown_id": "tool_call_id='call_2'",
    "tool_result_not_after_call": "did not have response messages: call_1",
    "tool_result_for_older_call": "must be a response to a preceeding message",
    "call_without_result": "did not have response messages: call_1",
    "call_without_result_at_end": "did not have response messages: call_1",
    "arguments_not_string": "expected a string, but got dict",
    "arguments_not_json": "not valid JSON",
    "bad_tool_name": "tools[0].function.name",
    "long_tool_name": "tools[0].function.name",
    "bad_call_name": "tool_calls[0].function.name",
    "stream_options_without_stream": "'stream_options'",
    "both_max_tokens": "cannot both be set",
    "too_many_stops": "maximum length 4",
    "unknown_part_type": "'document'",
    "image_in_system": "only allowed in user messages",
    "unknown_top_level": "argument supplied: thinking",
    "tool_choice_unknown_function": "'Write' not found",
    "tool_choice_without_tools": "only allowed when 'tools'",
    "empty_parameters": "Invalid schema for function 'Read'",
    "non_object_parameters": "got 'type: \"string\"'",
    "unknown_function_key": "function.input_schema",
    "null_user_content": "messages[4].content",
    "empty_messages": "too short",
    "reasoning_effort_on_gpt_4o": "'reasoning_effort'",
    "max_tokens_over_limit": "at most 16384",
}


@pytest.fixture
def fake() -> Iterator[FakeOpenAIUpstream]:
    """A strict fake requiring ``TOKEN``, with gpt-4o's output limit."""
    with FakeOpenAIUpstream(strict=True, token=TOKEN, rules=Strictness(max_output_tokens=16_384)) as server:
        yield server


def _post(fake: FakeOpenAIUpstream, body: Any, token: str = TOKEN, *, stream: bool = False) -> requests.Response:
    return requests.post(fake.base_url + "/chat/completions", json=body, headers={"authorization": f"Bearer {token}"},
                         timeout=10, stream=stream)


def _data(response: requests.Response) -> list[Any]:
    decoder = SSEDecoder()
    frames = [frame for chunk in response.iter_content(chunk_size=None) for frame in decoder.feed(chunk)]
    return [frame.data if frame.data == "[DONE]" else json.loads(frame.data) for frame in frames]


def test_clean_request_streams_text_usage_and_done(fake: FakeOpenAIUpstream) -> None:
    """The clean body is accepted; the default stream is text, finish, usage, ``[DONE]``."""
    with _post(fake, CLEAN) as response:
        assert response.status_code == 200, response.text
        items = _data(response)

    assert items[-1] == "[DONE]"
    chunks = items[:-1]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == DEFAULT_TEXT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 12
    assert fake.rejections() == []


def test_json_default_and_models(fake: FakeOpenAIUpstream) -> None:
    """Without ``stream`` the answer is one ``chat.completion`` echoing the model."""
    body = _with(lambda b: [b.pop("stream"), b.pop("stream_options")])
    response = _post(fake, {**body, "model": "my-model"})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["object"], answer["model"]) == ("chat.completion", "my-model")
    assert answer["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert requests.get(fake.base_url + "/models", timeout=10).json()["data"][0]["id"] == "gpt-4o"


def test_wrong_token_is_401(fake: FakeOpenAIUpstream) -> None:
    """Without the configured bearer token the answer is 401 ``invalid_api_key``."""
    response = _post(fake, CLEAN, token="sk-wrong")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_strict_mode_rejects(fake: FakeOpenAIUpstream, name: str) -> None:
    """Each change alone turns the clean body into a 400 with OpenAI's error body."""
    response = _post(fake, _with(BROKEN[name]))

    assert response.status_code == 400, f"{name} was accepted"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert REASONS[name] in error["message"]
    assert fake.rejections() == [error["message"]]


def test_reasoning_content_allowed_when_enabled() -> None:
    """``Strictness(reasoning_content=True)`` accepts ``reasoning_content`` on assistant messages."""
    with FakeOpenAIUpstream(strict=True, token=TOKEN, rules=Strictness(reasoning_content=True)) as fake:
        response = _post(fake, _with(BROKEN["reasoning_content"]))
    assert response.status_code == 200, response.text


def test_scripted_tool_call_stream(fake: FakeOpenAIUpstream) -> None:
    """``tool_call_chunks`` streams id and name first, then the arguments split in pieces."""
    fake.script(StreamReply(tool_call_chunks([("call_9", "Read", {"path": "/tmp/x"})])))
    with _post(fake, CLEAN) as response:
        items = _data(response)

    deltas = [c["choices"][0]["delta"] for c in items[:-1] if c["choices"]]
    fragments = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert (fragments[0]["id"], fragments[0]["function"]["name"]) == ("call_9", "Read")
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {"path": "/tmp/x"}
    assert len(fragments) == 4


def test_die_drops_the_connection_mid_stream(fake: FakeOpenAIUpstream) -> None:
    """``die=True`` closes the socket without ``[DONE]`` or the chunked terminator."""
    fake.script(StreamReply(text_chunks(["partial"], prompt_tokens=None)[:2], die=True))
    with _post(fake, CLEAN, stream=True) as response, pytest.raises(requests.exceptions.ChunkedEncodingError):
        _data(response)
    assert fake.chat_requests()[0].chunks_sent == 2
