"""One client request on its way through the gateway, and the facts of its body, computed once.

The view builds an :class:`Exchange` (body, call context, usage record, the worker slot it
holds) and hands it to :meth:`app.orchestrator.Orchestrator.handle`. Everything downstream reads
the body's facts from :class:`RequestFacts` — the token estimate, whether it carries images,
whether its answer may be cached, its cache key per target — so no consumer recomputes them.
Its messages are serialised once (:class:`~app.anthropic.encoded.Encoded`, carried in the call
context); what depends on one message alone is kept in that message's notes, shared by every
request that resends it.
The exchange is settled exactly once (:meth:`Exchange.settle`): the slot is given back there and
nowhere else, whatever the exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from app.accounting.usage import RequestRecord
from app.anthropic.encoded import Encoded, encoded, noted
from app.anthropic.tokens import count_tokens, estimate_tokens
from app.cache.prompt import PromptCache
from app.providers.base import CallContext, has_images


class RequestFacts:
    """Facts of one request body, each computed on first use and then kept."""

    def __init__(self, request: dict[str, Any], cache: PromptCache, given: Encoded | None = None) -> None:
        self.request = request
        self._cache = cache
        self._given = given
        self._keys: dict[tuple[str, str], str] = {}

    @cached_property
    def encoded(self) -> Encoded | None:
        """The request's messages serialised, reusing the client's bytes for every message of
        theirs it carries (all of them, or the agent's turn around them); None when ``messages`` is
        not a list."""
        messages = self.request.get("messages")
        if self._given is not None and isinstance(messages, list):
            return self._given.reusing(messages)
        return encoded(messages)

    @cached_property
    def estimated_tokens(self) -> int:
        """The routing estimate of the prompt's size."""
        given = self.encoded
        return estimate_tokens(self.request, given.parts, given.notes) if given else estimate_tokens(self.request)

    @cached_property
    def prompt_tokens(self) -> int:
        """The prompt counted with the tokenizer (for a cache miss's usage)."""
        given = self.encoded
        return count_tokens(self.request, given.notes) if given else count_tokens(self.request)

    @cached_property
    def images(self) -> bool:
        """Whether any message carries an image."""
        given = self.encoded
        if given is None:
            return has_images(self.request)
        return any(noted(notes, "has_images", _carries_images, message)
                   for message, notes in zip(given.messages, given.notes, strict=True))

    @cached_property
    def cacheable(self) -> bool:
        """Whether an answer to this request may be looked up in and stored to the prompt cache."""
        return self._cache.cacheable_request(self.request)

    def cache_key(self, provider: str, model: str) -> str:
        """The prompt-cache key of this request as answered by ``model`` on ``provider``."""
        target = (provider, model)
        if target not in self._keys:
            self._keys[target] = self._cache.key(self.request, provider, model)
        return self._keys[target]


def _carries_images(message: dict[str, Any]) -> bool:
    return has_images({"messages": [message]})


@dataclass
class Exchange:
    """One ``/v1/messages`` request: what the client sent and what has happened to it so far.

    ``upstream`` is the request the model is sent: the client's body, or the agent's turn with
    Lynkr's tools added; ``facts`` describe it.
    """

    body: dict[str, Any]
    ctx: CallContext
    record: RequestRecord
    cache: PromptCache
    release_slot: Callable[[], None]
    started: float = field(default_factory=time.perf_counter)
    upstream: dict[str, Any] = field(init=False)
    upstream_ctx: CallContext = field(init=False)  # ``ctx`` for the upstream calls
    facts: RequestFacts = field(init=False)
    _settled: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.use_upstream(self.body)

    @property
    def stream(self) -> bool:
        """Whether the client asked for an SSE stream."""
        return bool(self.body.get("stream"))

    def use_upstream(self, request: dict[str, Any], encoded: Encoded | None = None) -> None:
        """Send ``request`` upstream instead of the client's body (the agent's turn; ``encoded``:
        its messages serialised, which the upstream calls then reuse)."""
        self.upstream = request
        self.upstream_ctx = replace(self.ctx, encoded=encoded) if encoded is not None else self.ctx
        self.facts = RequestFacts(request, self.cache, self.upstream_ctx.encoded)

    def settle(self) -> bool:
        """Mark the exchange settled and give its slot back; False when it already was."""
        with self._lock:
            if self._settled:
                return False
            self._settled = True
        self.release_slot()
        return True
