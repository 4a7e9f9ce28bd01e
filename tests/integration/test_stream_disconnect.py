"""A client that goes away mid-stream releases the upstream at once and leaves no reader running."""

from __future__ import annotations

import time
from typing import Any

from app.sources import open_sources
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.integration.test_messages_anthropic import make_request


def test_disconnect_shuts_the_upstream_and_ends_the_reader(make_app: Any) -> None:
    with FakeAnthropicUpstream() as upstream:
        app = make_app(databricks_api_base=upstream.url, databricks_endpoint_path="/v1/messages")
        events = [ev.message_start(), ev.text_start(), *(ev.text_delta(f"{n} ") for n in range(200)),
                  ev.block_stop(), *ev.message_end()]
        upstream.script(StreamReply(events, event_delay=0.05))
        response = app.test_client().post("/v1/messages", json=make_request(stream=True), buffered=False)
        body = iter(response.response)
        received = b""
        while received.count(b"content_block_delta") < 3:
            received += next(body)
        assert open_sources() == 1
        response.close()
        closed_at = time.monotonic()
        [request] = upstream.wait_for_requests(1)
        assert request.done.wait(5)
        assert request.disconnected_at is not None
        assert request.disconnected_at - closed_at < 1.0
        assert not request.completed
        deadline = time.monotonic() + 1.0
        while open_sources() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert open_sources() == 0
