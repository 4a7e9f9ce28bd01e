"""The fake upstream itself: its strict mode rejects what Databricks rejects, and it notices
disconnects — so e2e tests that rely on either can fail."""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import load_fixture
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply

TOKEN = "dapi-fake-self-test-0001"
CLEAN: dict[str, Any] = {
    "model": "databricks-claude-sonnet-4-5", "max_tokens": 2048,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}],
}


@pytest.fixture
def mocked_strict() -> Iterator[FakeAnthropicUpstream]:
    """A strict fake requiring ``TOKEN``."""
    with FakeAnthropicUpstream(strict=True, token=TOKEN) as fake:
        yield fake


def _post(fake: FakeAnthropicUpstream, body: dict[str, Any], **headers: str) -> requests.Response:
    headers = {"authorization": f"Bearer {TOKEN}", "anthropic-version": "2023-06-01", **headers}
    return requests.post(fake.url + "/v1/messages", json=body, headers=headers, timeout=10)


def _changed(change: str) -> dict[str, Any]:
    body = copy.deepcopy(CLEAN)
    if change == "system_turn":
        body["messages"].append({"role": "system", "content": "be brief"})
    elif change == "adaptive_thinking":
        body["thinking"] = {"type": "adaptive"}
    elif change == "extra_field":
        body["context_management"] = {"edits": []}
    elif change == "defer_loading":
        body["tools"][0]["defer_loading"] = True
    elif change == "tool_reference":
        body["messages"][0]["content"].append({"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "tool_reference", "tool_name": "Read"}]})
    elif change == "max_tokens":
        body["max_tokens"] = 64_001
    elif change == "budget":
        body["thinking"]["budget_tokens"] = 2048
    return body


def test_clean_request_is_accepted(mocked_strict: FakeAnthropicUpstream) -> None:
    """What Databricks accepts gets the default answer."""
    response = _post(mocked_strict, CLEAN, **{"anthropic-beta": "interleaved-thinking-2025-05-14"})

    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["type"] == "text"
    assert mocked_strict.requests[0].rejected is None


@pytest.mark.parametrize("change", ["system_turn", "adaptive_thinking", "extra_field", "defer_loading",
                                    "tool_reference", "max_tokens", "budget"])
def test_strict_body_rules(mocked_strict: FakeAnthropicUpstream, change: str) -> None:
    """Each body feature Databricks refuses gets a 400 invalid_request_error."""
    response = _post(mocked_strict, _changed(change))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert mocked_strict.requests[0].rejected


@pytest.mark.parametrize("header", [("x-stainless-lang", "js"), ("x-app", "cli"), ("x-api-key", "sk-client"),
                                    ("anthropic-dangerous-direct-browser-access", "true"),
                                    ("anthropic-beta", "context-management-2025-06-27"),
                                    ("user-agent", "claude-cli/2.1.331 (external, sdk-cli)")])
def test_strict_header_rules(mocked_strict: FakeAnthropicUpstream, header: tuple[str, str]) -> None:
    """Client-only headers and unsupported betas get a 400."""
    response = _post(mocked_strict, CLEAN, **dict([header]))

    assert response.status_code == 400
    assert header[0] in mocked_strict.requests[0].rejected


def test_recorded_claude_code_request_is_rejected_as_is(mocked_strict: FakeAnthropicUpstream) -> None:
    """A Claude Code 2.1.331 request forwarded unchanged is what a gateway must not do."""
    recorded = load_fixture("v2.1.331-default-opus-request1.json")

    response = _post(mocked_strict, recorded["body"])

    assert response.status_code == 400


def test_wrong_token_is_401(mocked_strict: FakeAnthropicUpstream) -> None:
    """Only ``Bearer <token>`` is accepted."""
    response = _post(mocked_strict, CLEAN, authorization="Bearer dapi-other")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_disconnect_is_recorded_and_die_breaks_the_body() -> None:
    """A client closing mid-stream is noticed at once; ``die`` leaves a chunked body unfinished."""
    with FakeAnthropicUpstream() as fake:
        events = [ev.message_start(), *(ev.text_delta(str(n)) for n in range(100))]
        fake.script(StreamReply(events, event_delay=0.5), StreamReply([ev.message_start()], die=True))
        payload = json.dumps({**CLEAN, "stream": True}).encode()
        with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s"
                         % (fake.host.encode(), len(payload), payload))
            received = b""
            while b"message_start" not in received:
                data = sock.recv(65536)
                assert data, received
                received += data
        closed_at = time.monotonic()
        [first] = fake.wait_for_requests(1)
        assert first.done.wait(2)
        assert first.disconnected_at is not None
        assert first.disconnected_at - closed_at < 0.3

        with pytest.raises(requests.exceptions.ChunkedEncodingError), \
                requests.post(fake.url + "/v1/messages", json={**CLEAN, "stream": True}, stream=True,
                              timeout=5) as response:
            response.content  # noqa: B018 - reading the body is the point
