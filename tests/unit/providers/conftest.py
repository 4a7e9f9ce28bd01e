"""Building one provider over a Config, the built-in capability table and its own HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from app.config import Config
from app.providers._http import HttpClient
from app.providers.base import CallContext, Provider
from app.providers.capabilities import CapabilityTable

P = TypeVar("P", bound=Provider)


@pytest.fixture
def make_provider() -> Callable[..., Any]:
    """``make_provider(cls, **config)``: an instance of ``cls`` over ``Config(**config)``."""

    def build(cls: type[P], **config: Any) -> P:
        http = HttpClient(cls.name, pool_size=2, connect_timeout_s=1.0, read_timeout_s=2.0)
        return cls(Config(**config), CapabilityTable(), http)

    return build


def call(requested_model: str = "claude-sonnet-4-5", **overrides: Any) -> CallContext:
    """A call context for ``requested_model``."""
    return CallContext(request_id="req_abc123", requested_model=requested_model, **overrides)


def request(**overrides: Any) -> dict[str, Any]:
    """A minimal Anthropic request."""
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
            **overrides}
