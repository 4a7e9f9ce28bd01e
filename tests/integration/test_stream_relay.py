"""An Anthropic upstream's content deltas reach the client as the upstream wrote them."""

from __future__ import annotations

from pathlib import Path
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


# -- the default server mode: the agent loop's steps --------------------------------------------------


def server_streamed(make_app: Any, workspace: Path, *replies: StreamReply) -> list[bytes]:
    with FakeAnthropicUpstream() as upstream:
        app = make_app(workspace_root=str(workspace), databricks_api_base=upstream.url,
                       databricks_endpoint_path="/v1/messages")
        upstream.script(*replies)
        response = app.test_client().post("/v1/messages", json=make_request(stream=True))
        assert response.status_code == 200
        return [frame + b"\n\n" for frame in response.data.split(b"\n\n")[:-1]]


def events_of(frames: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(f.split(b"data: ", 1)[1]) for f in frames if b"data: " in f]


def test_in_server_mode_a_steps_deltas_go_on_byte_for_byte_once_their_block_is_open(
        make_app: Any, tmp_path: Path) -> None:
    chunks = [encode(ev.message_start()), encode(ev.text_start()), *DELTAS,
              encode(ev.block_stop()), *(encode(e) for e in ev.message_end())]
    frames = server_streamed(make_app, tmp_path, StreamReply(chunks=chunks))

    events = events_of(frames)
    validate_stream(events)
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta",
                                          "content_block_delta", "content_block_stop", "message_delta",
                                          "message_stop"]
    # The first delta opens the client's block, so it is the loop's own; the next is the upstream's.
    assert frames[2] == encode({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                                                                    "text": "Hel"}})
    assert frames[3] == DELTAS[1]


def test_in_server_mode_a_later_steps_deltas_keep_the_clients_block_index(make_app: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    answer = [ev.message_start(), ev.text_start(0), ev.text_delta("Found ", 0), ev.text_delta("the ", 0),
              ev.block_stop(0), ev.text_start(1), ev.text_delta("notes", 1), ev.text_delta(".", 1),
              ev.block_stop(1), *ev.message_end()]
    frames = server_streamed(make_app, tmp_path,
                             StreamReply(events=ev.tool_use_events("workspace_list", {"path": "."},
                                                                   preface="Looking.")),
                             StreamReply(events=answer))

    events = events_of(frames)
    validate_stream(events)
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    assert {e["index"] for e in deltas} == {0}, "every step's text goes into the client's one text block"
    assert "".join(e["delta"]["text"] for e in deltas) == "Looking.\n⚙ workspace_list(path=.)\nFound the notes."
    assert ev.sse_frame(ev.text_delta("the ", 0)) in frames  # same index as the client's block: relayed
    assert ev.sse_frame(ev.text_delta(".", 1)) not in frames  # the upstream's index 1 is the client's 0
    assert encode({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "."}}) in frames
