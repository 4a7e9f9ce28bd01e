"""Anthropic-format upstreams: allow-listed headers, the host profile applied, errors passed through."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
import pytest
import responses

from app.anthropic.encoded import Encoded
from app.anthropic.events import StreamBuilder
from app.anthropic.types import SYNTHETIC_SIGNATURE_PREFIX
from app.errors import LynkrError
from app.providers._http import UpstreamTooLargeError
from app.providers.anthropic_family import DEFAULT_VERSION, USER_AGENT, AnthropicFormatProvider
from app.providers.wire import Pause
from tests.unit.providers.conftest import call, request

URL = "https://anthropic.example/v1/messages"


class Direct(AnthropicFormatProvider):
    """The family with nothing of its own: a host whose profile is Databricks'."""

    name = "direct"
    host: ClassVar[str] = "databricks"
    default_model = "upstream-claude"

    def missing_settings(self) -> list[str]:
        return []

    def url(self) -> str:
        return URL

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": "Bearer t"}


@pytest.fixture
def provider(make_provider: Callable[..., Any]) -> Direct:
    return make_provider(Direct)


def test_headers_are_an_allow_list_with_the_hosts_betas(provider: Direct) -> None:
    upstream = provider.convert_request(request(), call(anthropic_beta="claude-code-20250219, "
                                                             "interleaved-thinking-2025-05-14"), stream=True)
    assert upstream.url == URL
    assert upstream.model == "upstream-claude"
    assert upstream.headers == {
        "content-type": "application/json", "accept": "text/event-stream", "anthropic-version": DEFAULT_VERSION,
        "user-agent": USER_AGENT, "authorization": "Bearer t", "anthropic-beta": "interleaved-thinking-2025-05-14"}


def test_the_clients_version_is_sent_and_no_beta_header_when_none_is_accepted(provider: Direct) -> None:
    upstream = provider.convert_request(request(stream=True), call(anthropic_version="2024-01-01",
                                                                   anthropic_beta="claude-code-20250219"),
                                        stream=False)
    assert upstream.headers["anthropic-version"] == "2024-01-01"
    assert upstream.headers["accept"] == "application/json"
    assert "anthropic-beta" not in upstream.headers
    assert "stream" not in upstream.body


def test_the_body_is_fitted_to_the_host(provider: Direct) -> None:
    upstream = provider.convert_request(
        request(max_tokens=200_000, context_management={"edits": []},
                messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]),
        call(), stream=True)
    assert upstream.body == {"model": "upstream-claude", "max_tokens": 32_000, "stream": True,
                             "system": [{"type": "text", "text": "Be terse."}],
                             "messages": [{"role": "user", "content": "Hi"}]}


def test_a_clamp_is_logged_once_per_model(provider: Direct,
                                         log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    records = log_records("lynkr.providers")
    for _ in range(3):
        provider.convert_request(request(max_tokens=100_000), call(), stream=False)
    assert [r.getMessage() for r in records] == ["max_tokens 100000 clamped to 32000, the output limit of "
                                                 "upstream-claude"]


def test_the_message_echoes_the_clients_model(provider: Direct) -> None:
    body = {"id": "msg_1", "model": "upstream-claude", "content": []}
    assert provider.message_from(body, request(), call("claude-x")) == {"id": "msg_1", "model": "claude-x",
                                                                       "content": []}


def test_an_anthropic_error_body_passes_through_and_anything_else_gets_ours(provider: Direct) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = provider.error_for(529, orjson.dumps(body), {"retry-after": "2"})
    assert (error.status, error.error_type, error.message, error.provider) == (529, "overloaded_error",
                                                                               "Overloaded", "direct")
    assert error.envelope("req_1") == body
    plain = provider.error_for(503, b"upstream connect error", {})
    assert (plain.status, plain.error_type, plain.message) == (503, "overloaded_error", "upstream connect error")
    assert plain.envelope("req_1") == {"type": "error", "error": {"type": "overloaded_error",
                                                                   "message": "upstream connect error"},
                                       "request_id": "req_1"}


@responses.activate
def test_send_and_a_refusal_over_http(provider: Direct) -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "upstream-claude",
               "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    responses.post(URL, json=message, headers={"request-id": "up_1", "x-private": "no"})
    reply = provider.send(request(), call("claude-sonnet-4-5"))
    assert reply.message == {**message, "model": "claude-sonnet-4-5"}
    assert (reply.headers, reply.provider, reply.model) == ({"request-id": "up_1"}, "direct", "upstream-claude")
    sent = orjson.loads(responses.calls[0].request.body)  # type: ignore[arg-type]  # bytes, as we sent it
    assert sent["model"] == "upstream-claude"

    responses.post(URL, status=429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
                   headers={"retry-after": "7.5"})
    with pytest.raises(LynkrError) as refused:
        provider.send(request(), call())
    assert (refused.value.status, refused.value.error_type, refused.value.retry_after) == (
        429, "rate_limit_error", "7.5")
    assert refused.value.headers == {"retry-after": "8"}


@responses.activate
def test_a_stream_is_relayed_and_an_early_end_is_an_error_event(provider: Direct) -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": "upstream-claude", "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    ]
    body = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)
    responses.post(URL, body=body, content_type="text/event-stream")
    stream = provider.open_stream(request(), call())
    translator = stream.translator(StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5"))
    out = [event for item in stream.items if not isinstance(item, Pause) for event in translator.feed(item)]
    out += translator.close()
    stream.release()
    assert [event["type"] for event in out] == ["message_start", "content_block_start", "content_block_delta",
                                                "error"]
    assert out[2]["delta"] == {"type": "text_delta", "text": "Hi"}
    assert out[-1]["error"] == {"type": "api_error",
                                "message": "The upstream stream ended before the message was complete."}


@pytest.mark.parametrize(("error_type", "status"), [
    ("overloaded_error", 529), ("rate_limit_error", 429), ("invalid_request_error", 400),
    ("authentication_error", 401), ("api_error", 500), ("timeout_error", 504), ("something_new", 502),
])
@responses.activate
def test_an_error_body_with_status_200_is_an_error_with_its_types_status(provider: Direct, error_type: str,
                                                                          status: int) -> None:
    body = {"type": "error", "error": {"type": error_type, "message": "went wrong"}}
    responses.post(URL, json=body)
    with pytest.raises(LynkrError) as raised:
        provider.send(request(), call())
    error = raised.value
    assert (error.status, error.error_type, error.message, error.provider) == (status, error_type, "went wrong",
                                                                               "direct")
    assert error.envelope("req_1") == body  # passes through, as an error status's body does


@pytest.mark.parametrize("body", [[1, 2], "text", {"type": "error"}])
def test_a_body_that_is_no_message_is_an_upstream_error(provider: Direct, body: Any) -> None:
    with pytest.raises(LynkrError) as raised:
        provider.message_from(body, request(), call())
    assert raised.value.status in (500, 502)
    assert raised.value.provider == "direct"


@responses.activate
def test_a_json_body_over_the_limit_is_an_upstream_error(make_provider: Callable[..., Any]) -> None:
    small = make_provider(Direct, max_upstream_event_bytes=100)
    message = {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "x" * 200}]}
    responses.post(URL, json=message)
    with pytest.raises(UpstreamTooLargeError) as raised:
        small.send(request(), call())
    assert (raised.value.status, raised.value.error_type) == (502, "api_error")
    assert raised.value.message == ("direct sent a body or stream event larger than 100 bytes "
                                    "(LYNKR_MAX_UPSTREAM_EVENT_BYTES).")


@responses.activate
def test_an_sse_line_over_the_limit_ends_the_stream_with_an_upstream_error(
        make_provider: Callable[..., Any]) -> None:
    small = make_provider(Direct, max_upstream_event_bytes=300)
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 400}}
    responses.post(URL, body=b"data: " + orjson.dumps(delta) + b"\n\n", content_type="text/event-stream")
    stream = small.open_stream(request(), call())
    with pytest.raises(UpstreamTooLargeError):
        list(stream.items)
    stream.release()


def long_request() -> dict[str, Any]:
    """A conversation the Databricks profile rewrites in places: a system turn (hoisted), thinking
    Lynkr synthesised (dropped), a tool reference (made text); the other turns go as they came."""
    synthetic = {"type": "thinking", "thinking": "t", "signature": SYNTHETIC_SIGNATURE_PREFIX + "x"}
    reference = {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "tool_reference", "tool_name": "Grep"}]}
    turns: list[dict[str, Any]] = [{"role": "user", "content": "Find the bug ü"},
                                   {"role": "system", "content": "Be brief."},
                                   {"role": "assistant", "content": [synthetic, {"type": "tool_use", "id": "toolu_1",
                                                                                 "name": "ToolSearch", "input": {}}]},
                                   {"role": "user", "content": [reference]}]
    turns += [{"role": "assistant" if i % 2 else "user", "content": [{"type": "text", "text": f"turn {i}"}]}
              for i in range(20)]
    return request(messages=turns, system=[{"type": "text", "text": "You are Claude Code."}], max_tokens=200_000,
                   metadata={"user_id": "u"}, context_management={"edits": []}, stream=True)


@pytest.mark.parametrize("stream", [False, True])
def test_the_body_built_from_the_clients_encoded_messages_is_the_full_paths(provider: Direct, stream: bool) -> None:
    client = long_request()
    full = provider.convert_request(client, call(), stream=stream)
    spliced = provider.convert_request(client, call(encoded=Encoded(client["messages"])), stream=stream)

    assert full.payload is None
    kept = spliced.body["messages"]
    assert len(kept) == len(client["messages"]) - 1  # the system turn hoisted
    assert kept[0] is client["messages"][0]
    assert kept[1] is not client["messages"][2]  # rewritten turns
    assert kept[2] is not client["messages"][3]
    assert spliced.body == full.body
    assert spliced.payload == orjson.dumps(full.body)


def test_a_step_around_the_encoded_messages_reuses_their_bytes_and_serialises_the_rest(provider: Direct) -> None:
    client = long_request()
    step = {**client, "messages": [*client["messages"], {"role": "user", "content": "next step"}]}
    # Indented bytes stand for the client's: valid JSON that a fresh serialisation would not write.
    indented = [orjson.dumps(m, option=orjson.OPT_INDENT_2) for m in client["messages"]]

    upstream = provider.convert_request(step, call(encoded=Encoded(client["messages"], indented)), stream=False)

    assert upstream.payload is not None
    assert orjson.loads(upstream.payload) == upstream.body
    sent = {id(m) for m in upstream.body["messages"]}
    reused = [part for part, m in zip(indented, client["messages"], strict=True) if id(m) in sent]
    assert len(reused) > 20
    assert all(part in upstream.payload for part in reused)
    assert b'{"role":"user","content":"next step"}]' in upstream.payload


@responses.activate
def test_the_bytes_sent_upstream_are_the_spliced_body(provider: Direct) -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "upstream-claude",
               "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    responses.post(URL, json=message)
    client = long_request()

    provider.send(client, call(encoded=Encoded(client["messages"])))

    assert responses.calls[0].request.body == orjson.dumps(provider.convert_request(client, call(), stream=False).body)


def test_a_resent_message_is_not_translated_again_and_an_edited_one_is(provider: Direct,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from app.providers.formats import anthropic as anthropic_format

    tag = uuid.uuid4().hex
    first = request(messages=[{"role": "user", "content": f"{tag} question"},
                              {"role": "assistant", "content": [{"type": "text", "text": f"{tag} answer"}]}])
    provider.convert_request(first, call(encoded=Encoded(first["messages"])), stream=False)
    translated: list[object] = []
    real = anthropic_format.upstream_message

    def counting(message: dict[str, Any], profile: Any) -> dict[str, Any]:
        translated.append(message)
        return real(message, profile)

    monkeypatch.setattr(anthropic_format, "upstream_message", counting)
    synthetic = {"type": "thinking", "thinking": "t", "signature": SYNTHETIC_SIGNATURE_PREFIX + "x"}
    edited = orjson.loads(orjson.dumps(first))
    edited["messages"][1]["content"].insert(0, synthetic)  # an earlier turn, now with thinking to drop
    edited["messages"].append({"role": "user", "content": f"{tag} next"})
    upstream = provider.convert_request(edited, call(encoded=Encoded(edited["messages"])), stream=False)

    assert translated == edited["messages"][1:]  # the resent first turn came from its notes
    assert upstream.body["messages"][1]["content"] == [{"type": "text", "text": f"{tag} answer"}]
    assert upstream.payload == orjson.dumps(provider.convert_request(edited, call(), stream=False).body)
