"""The prompt cache through real gunicorn: workers share answers through Redis, the SDK reads hits.

Each worker has its own in-process tier, so with two workers only the shared Redis tier makes a
repeated request a hit whichever worker takes it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import anthropic
import pytest
import redis

from tests.e2e.helpers import Gateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("LYNKR_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
REQUESTED = "claude-sonnet-5-5"


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """Two workers with the cache on and sharing the test Redis (a missing server fails the test)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/start-services.sh")
    return make_gateway(PROMPT_CACHE_ENABLED="true", REDIS_URL=REDIS_URL, WEB_CONCURRENCY="2")


def test_repeated_requests_reach_the_upstream_once(gateway: Gateway, mocked_upstream: FakeAnthropicUpstream) -> None:
    """JSON and streamed calls of one prompt, over fresh connections: one upstream call in all."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": f"Say hello ({uuid.uuid4()})."}]
    first = client.messages.create(model=REQUESTED, max_tokens=256, messages=messages)
    hits = [client.messages.with_raw_response.create(model=REQUESTED, max_tokens=256, messages=messages)
            for _ in range(4)]
    with client.messages.stream(model=REQUESTED, max_tokens=256, messages=messages) as stream:
        streamed = stream.get_final_message()
    client.close()

    assert len(mocked_upstream.requests) == 1
    assert all(raw.headers["x-lynkr-cache"] == "hit" for raw in hits)
    for message in [raw.parse() for raw in hits] + [streamed]:
        assert [block.text for block in message.content] == [block.text for block in first.content]
        assert message.model == REQUESTED
        assert message.id != first.id
        assert message.usage.input_tokens == 0
        assert message.usage.cache_read_input_tokens > 0
