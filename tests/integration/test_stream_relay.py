"""An Anthropic upstream's content deltas reach the client as the upstream wrote them."""

from __future__ import annotations

from typing import Any

import orjson

from app.anthropic.events import validate_stream
from app.anthropic.sse import encode
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.integration.test_messages_anthropic import make_request

# As an upstream may write them: spaced JSON, a field we do not know.
DELTAS = [b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
          b'"delta": {"type": "text_delta", "text": "Hel"}, "x_trace": 7}\n\n',
          b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
          b'"delta": {"type": "text_delta", "text": "lo \\u00e9"}}\n\n']


def streamed(make_app: Any, chunks: list[bytes]) -> list[bytes]:
    with FakeAnthropicUpstream() as upstream:
        app = make_app(databricks_api_base=upstream.url, databricks_endpoint_path="/v1/messages")
        upstream.script(StreamReply(chunks=chunks))
        response = app.test_client().post("/v1/messages", json=make_request(stream=True))
        assert response.status_code == 200
        return [frame + b"\n\n" for frame in response.data.split(b"\n\n")[:-1]]


def test_deltas_go_on_byte_for_byte_and_the_message_adds_up(make_app: Any) -> None:
    start = encode(ev.message_start())
    head = [start, encode(ev.text_start())]
    tail = [encode(ev.block_stop()), *(encode(e) for e in ev.message_end())]
    frames = streamed(make_app, [*head, *DELTAS, *tail])

    assert frames[2:4] == DELTAS
    events = [orjson.loads(f.split(b"data: ", 1)[1]) for f in frames]
    validate_stream(events)
    assert events[0]["message"]["model"] == "claude-sonnet-4-5-20250929"  # message_start is still ours


def test_a_delta_for_a_block_that_is_not_open_ends_in_an_error_event(make_app: Any) -> None:
    stray = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 5, "delta": {}}\n\n'
    frames = streamed(make_app, [encode(ev.message_start()), encode(ev.text_start()), stray,
                                 encode(ev.block_stop()), *(encode(e) for e in ev.message_end())])

    events = [orjson.loads(f.split(b"data: ", 1)[1]) for f in frames]
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "error"]
    assert events[-1]["error"]["type"] == "api_error"
    assert b"index\": 5" not in b"".join(frames)
