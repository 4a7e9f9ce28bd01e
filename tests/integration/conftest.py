"""Shared pieces of the Redis-marked tests: ``REDIS_URL``, the ``server`` fixture and ``closed_url``.

``.ci/run`` starts the Redis (see scripts/start-services.sh); a missing server is a failure, not a skip,
so CI cannot pass with the shared tiers untested.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("LYNKR_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def server() -> Iterator[redis.Redis]:
    """A direct client on the test Redis; fails the test (never skips it) when it is not there."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); start it with scripts/start-services.sh "
                    "or `redis-server --port 6379 --daemonize yes --bind 127.0.0.1`, or set LYNKR_TEST_REDIS_URL")
    yield client
    client.close()


def closed_url() -> str:
    """A Redis URL on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/15"
