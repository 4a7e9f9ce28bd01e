"""Prompt cache: a complete, tool-free answer served again for an identical request.

Two tiers. The first is in process: a ``cachetools.TTLCache`` (TTL, then least recently used
out at ``PROMPT_CACHE_MAX_ENTRIES``) under a lock, holding each answer as JSON bytes. The
second, when ``REDIS_URL`` is set, is a Redis all instances share (:mod:`app.cache.redis`): a
local miss asks Redis and fills the local tier for the entry's remaining lifetime; a store
writes both. Redis failing only costs hits.

Only answers that are safe to replay are stored: ``stop_reason`` ``end_turn`` or
``stop_sequence`` and content made of text and thinking blocks alone — no tool call, nothing
cut short by ``max_tokens``, and nothing a :class:`~app.anthropic.events.StreamBuilder` could not
replay exactly. Keys come from :func:`app.cache.key.cache_key`.

A hit is answered as Anthropic reports a prompt-cache read (:func:`hit_message`,
:func:`hit_events`); a miss passes the upstream's usage through, adding the cache write when
the upstream reported none (:func:`miss_usage`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from cachetools import TTLCache

from app.cache.key import cache_key

if TYPE_CHECKING:
    from app.cache.redis import RedisTier
from app.anthropic.events import Event, StreamBuilder

STORABLE_STOP_REASONS = frozenset({"end_turn", "stop_sequence"})
PROMPT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class PromptCache:
    """Stored answers by request key; ``enabled=False`` makes every call a no-op miss."""

    def __init__(self, *, enabled: bool = True, max_entries: int = 1000, ttl_ms: int = 300_000,
                 redis_tier: RedisTier | None = None, timer: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled and max_entries > 0 and ttl_ms > 0
        self.ttl_s = ttl_ms / 1000
        self.timer = timer
        self.redis = redis_tier if self.enabled else None
        # Values are (expires_at, JSON bytes): an entry filled from Redis lives only as long
        # as its Redis copy, which is less than the TTLCache's own TTL.
        self._local: TTLCache[str, tuple[float, bytes]] = TTLCache(
            max(max_entries, 1), max(self.ttl_s, 0.001), timer=timer)
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any, *, timer: Callable[[], float] = time.monotonic) -> PromptCache:
        """The cache ``PROMPT_CACHE_*`` and ``REDIS_URL`` describe."""
        cache = cls(enabled=config.prompt_cache_enabled, max_entries=config.prompt_cache_max_entries,
                    ttl_ms=config.prompt_cache_ttl_ms, timer=timer)
        if cache.enabled and config.redis_url:
            # Imported only when configured: the redis client costs ~8 MB per worker.
            from app.cache.redis import RedisTier

            cache.redis = RedisTier.from_url(config.redis_url, ttl_ms=config.prompt_cache_ttl_ms, timer=timer)
        return cache

    def key(self, request: dict[str, Any], provider: str, model: str) -> str:
        """The key of ``request`` as answered by upstream ``model`` on ``provider``."""
        return cache_key(request, provider, model)

    def cacheable_request(self, request: dict[str, Any], *, after_server_tool: bool = False) -> bool:
        """Whether an answer to ``request`` may be looked up and stored.

        ``after_server_tool`` says the ``tool_result`` blocks of the last user turn come from
        tools Lynkr ran itself (the agent loop): those turns are never cached, since their
        results describe the workspace at one moment.
        """
        messages = request.get("messages")
        if not self.enabled or not isinstance(messages, list) or not messages:
            return False
        return not (after_server_tool and _has_tool_results(_last_user_turn(messages)))

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored ``Message`` for ``key`` (a fresh copy), from the local tier, else Redis."""
        if not self.enabled:
            return None
        now = self.timer()
        with self._lock:
            entry = self._local.get(key)
            if entry is not None and entry[0] <= now:
                self._local.pop(key, None)
                entry = None
        if entry is not None:
            return orjson.loads(entry[1])
        return self._get_shared(key, now)

    def _get_shared(self, key: str, now: float) -> dict[str, Any] | None:
        found = self.redis.get(key) if self.redis is not None else None
        if found is None:
            return None
        payload, remaining_s = found
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not storable_answer(message):
            return None
        with self._lock:
            self._local[key] = (now + min(remaining_s, self.ttl_s), payload)
        return message

    def put(self, key: str, message: dict[str, Any]) -> bool:
        """Store ``message`` under ``key`` if it is a complete tool-free answer; whether it was."""
        if not self.enabled or not storable_answer(message):
            return False
        payload = orjson.dumps(message)
        with self._lock:
            self._local[key] = (self.timer() + self.ttl_s, payload)
        if self.redis is not None:
            self.redis.put(key, payload)
        return True

    def local_size(self) -> int:
        """Entries in this process's tier, expired ones dropped first.

        (Not ``__len__``: an empty cache would be falsy and ``cache or default`` would drop it.)
        """
        with self._lock:
            self._local.expire()
            return len(self._local)

    def close(self) -> None:
        """Release the Redis connections (the local tier needs nothing)."""
        if self.redis is not None:
            self.redis.close()


def storable_answer(message: Any) -> bool:
    """Whether ``message`` is complete, tool-free and exactly replayable as a stream.

    Replayable means text blocks (no citations) and signed thinking blocks, never two of the
    same kind in a row (the builder would merge them) and none empty (it would drop them).
    """
    if not isinstance(message, dict) or message.get("stop_reason") not in STORABLE_STOP_REASONS:
        return False
    content = message.get("content")
    if not isinstance(content, list):
        return False
    previous = None
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == previous or not (_plain_text(block) or _signed_thinking(block)):
            return False
        previous = kind
    return True


def _plain_text(block: dict[str, Any]) -> bool:
    return (block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"] != ""
            and not block.get("citations"))


def _signed_thinking(block: dict[str, Any]) -> bool:
    return (block.get("type") == "thinking" and isinstance(block.get("thinking"), str)
            and block["thinking"] != "" and isinstance(block.get("signature"), str))


def _last_user_turn(messages: list[Any]) -> Any:
    return next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)


def _has_tool_results(message: Any) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content)


# -- serving -------------------------------------------------------------------------------------


def message_id_for(request_id: str) -> str:
    """The ``msg_`` id of the answer to request ``req_…`` (as streams name theirs)."""
    return "msg_" + request_id.removeprefix("req_")


def prompt_tokens_of(message: dict[str, Any]) -> int:
    """The prompt size a stored answer's usage reports: input + cache read + cache write."""
    usage = message.get("usage") or {}
    return sum(_count(usage.get(key)) for key in PROMPT_KEYS)


def hit_message(message: dict[str, Any], *, prompt_tokens: int, request_id: str,
                requested_model: str) -> dict[str, Any]:
    """A stored answer as this request's: fresh id, the client's model, a cache-read usage."""
    usage = {"input_tokens": 0, "cache_read_input_tokens": prompt_tokens, "cache_creation_input_tokens": 0,
             "output_tokens": _count((message.get("usage") or {}).get("output_tokens"))}
    return {**orjson.loads(orjson.dumps(message)), "id": message_id_for(request_id),
            "model": requested_model, "usage": usage}


def hit_events(message: dict[str, Any], builder: StreamBuilder) -> list[Event]:
    """``message`` (a :func:`hit_message`) replayed as a complete event sequence by ``builder``."""
    usage = dict(message.get("usage") or {})
    events = builder.start({**usage, "output_tokens": 0})
    for block in message.get("content") or []:
        if block.get("type") == "text":
            events += builder.text(block["text"])
        elif block.get("type") == "thinking":
            events += builder.thinking(block["thinking"])
            events += builder.thinking_signature(block.get("signature") or "")
    return events + builder.finish(message.get("stop_reason"), usage, message.get("stop_sequence"))


def miss_usage(usage: dict[str, Any], prompt_tokens: int | Callable[[], int]) -> dict[str, Any]:
    """The upstream's ``usage``, plus a cache write when it reported no cache figures.

    The write is what makes input + cache read + cache write equal the prompt:
    ``max(0, prompt - input - read)``; a write of 0 is left out. An upstream that reported its
    input tokens counted the whole prompt itself, so its usage is kept as it is — our own count
    (a cl100k estimate, and a tokenizer load per worker) is only used when it reported none.
    ``prompt_tokens`` may be a function, called only when needed.
    """
    out = dict(usage)
    if any(out.get(key) is not None for key in PROMPT_KEYS[1:]) or _count(out.get("input_tokens")):
        return out
    prompt = prompt_tokens() if callable(prompt_tokens) else prompt_tokens
    read = _count(out.get("cache_read_input_tokens"))
    written = max(0, prompt - _count(out.get("input_tokens")) - read)
    if written:
        out["cache_creation_input_tokens"] = written
    return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class MissStreamBuilder(StreamBuilder):
    """A :class:`StreamBuilder` whose final usage follows :func:`miss_usage` for a storable answer.

    For a cacheable request on a miss, so a streamed answer reports the same usage as the
    JSON one; an answer that will not be stored (a tool call, ``max_tokens``) keeps the
    upstream's usage. Relayed (Anthropic-format) streams carry the upstream's own cache
    figures and pass unchanged.
    """

    def __init__(self, *, prompt_tokens: int | Callable[[], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompt_tokens = prompt_tokens

    def finish(self, stop_reason: str | None, usage: Mapping[str, Any] | None = None,
               stop_sequence: str | None = None) -> list[Event]:
        """Close the message as :meth:`StreamBuilder.finish`, with the usage completed."""
        if stop_reason in STORABLE_STOP_REASONS and not self.has_tool_use:
            reported = {"input_tokens": self.input_tokens,
                        **{k: v for k, v in (usage or {}).items() if v is not None}}
            usage = miss_usage(reported, self.prompt_tokens)
        return super().finish(stop_reason, usage, stop_sequence)
