"""The prompt cache: keys, what is stored, TTL and LRU, the Redis tier's failures, hits and usage."""

from __future__ import annotations

import copy
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest
import redis
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent

from app.anthropic.events import StreamBuilder, validate_stream
from app.cache.prompt import (
    MissStreamBuilder,
    PromptCache,
    hit_events,
    hit_message,
    miss_usage,
    prompt_tokens_of,
    storable_answer,
)
from app.cache.redis import RedisTier
from app.storage.redis_health import RETRY_AFTER_S, WARN_EVERY_S

PROVIDER, MODEL = "databricks", "databricks-claude-sonnet-4-5"


class FakeTimer:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "List the files."}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_A", "name": "Glob", "input": {"pattern": "*"}},
                {"type": "tool_use", "id": "toolu_B", "name": "Glob", "input": {"pattern": "*.py"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": [{"type": "text", "text": "a b"}]},
                {"type": "tool_result", "tool_use_id": "toolu_B", "content": "a.py"},
                {"type": "text", "text": "Which is Python?", "cache_control": {"type": "ephemeral"}},
            ]},
        ],
        "tools": [{"name": "Glob", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user_1_session_1"},
        "stream": True,
    }
    request.update(overrides)
    return request


def make_message(*content: dict[str, Any], stop_reason: str = "end_turn", **fields: Any) -> dict[str, Any]:
    message = {
        "id": "msg_upstream", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": list(content) or [{"type": "text", "text": "a.py is Python."}],
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 7, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 20},
    }
    message.update(fields)
    return message


def make_cache(timer: FakeTimer | None = None, **kwargs: Any) -> PromptCache:
    return PromptCache(timer=timer or FakeTimer(), **kwargs)


def key_of(request: dict[str, Any], provider: str = PROVIDER, model: str = MODEL) -> str:
    return PromptCache().key(request, provider, model)


# -- keys ------------------------------------------------------------------------------------------


def test_identical_requests_have_the_same_key() -> None:
    assert key_of(make_request()) == key_of(make_request())
    assert len(key_of(make_request())) == 64


def test_ids_metadata_cache_control_stream_and_client_model_do_not_change_the_key() -> None:
    other = make_request(metadata={"user_id": "someone_else"}, stream=False, model="claude-opus-4-5")
    other["system"][0].pop("cache_control")
    other["tools"][0].pop("cache_control")
    other["messages"][2]["content"][2].pop("cache_control")
    other["messages"][2]["content"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    other["messages"][1]["content"][0]["id"] = other["messages"][2]["content"][0]["tool_use_id"] = "toolu_X"
    other["messages"][1]["content"][1]["id"] = other["messages"][2]["content"][1]["tool_use_id"] = "toolu_Y"
    del other["stream"]
    assert key_of(other) == key_of(make_request())


def test_a_result_paired_with_another_call_changes_the_key() -> None:
    swapped = make_request()
    results = swapped["messages"][2]["content"]
    results[0]["tool_use_id"], results[1]["tool_use_id"] = "toolu_B", "toolu_A"
    assert key_of(swapped) != key_of(make_request())


def test_an_integer_temperature_keys_as_the_same_float() -> None:
    assert key_of(make_request(temperature=1)) == key_of(make_request(temperature=1.0))


@pytest.mark.parametrize("change", [
    {"system": "You are verbose."},
    {"messages": [{"role": "user", "content": "Hello"}]},
    {"tools": [{"name": "Read", "input_schema": {"type": "object"}}]},
    {"tool_choice": {"type": "any"}},
    {"temperature": 0.2},
    {"top_p": 0.9},
    {"top_k": 5},
    {"stop_sequences": ["END"]},
    {"thinking": {"type": "enabled", "budget_tokens": 2048}},
    {"max_tokens": 2048},
    {"output_config": {"effort": "high"}},  # a field the key does not know yet still counts
])
def test_every_answer_deciding_field_changes_the_key(change: dict[str, Any]) -> None:
    assert key_of(make_request(**change)) != key_of(make_request())


def test_provider_and_upstream_model_change_the_key() -> None:
    base = key_of(make_request())
    assert key_of(make_request(), provider="openrouter") != base
    assert key_of(make_request(), model="databricks-claude-opus-4-5") != base


def test_computing_a_key_leaves_the_request_untouched() -> None:
    request = make_request()
    before = copy.deepcopy(request)
    key_of(request)
    assert request == before


# -- what is stored --------------------------------------------------------------------------------


def test_a_stored_answer_comes_back_as_a_fresh_copy() -> None:
    cache = make_cache()
    message = make_message()
    assert cache.put("k", message) is True
    got = cache.get("k")
    assert got == message
    got["content"].clear()
    assert cache.get("k") == message


def test_an_unknown_key_is_a_miss() -> None:
    assert make_cache().get("nothing") is None


@pytest.mark.parametrize("message", [
    make_message({"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}, stop_reason="tool_use"),
    make_message({"type": "text", "text": "Let me look."},
                 {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
    make_message({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
    make_message(stop_reason="max_tokens"),
    make_message(stop_reason="pause_turn"),
    make_message(stop_reason="refusal"),
    make_message(stop_reason=None),
    make_message({"type": "redacted_thinking", "data": "xyz"}, {"type": "text", "text": "ok"}),
    make_message({"type": "text", "text": "cited", "citations": [{"type": "char_location"}]}),
    make_message({"type": "text", "text": "one"}, {"type": "text", "text": "two"}),
    make_message({"type": "text", "text": ""}),
    make_message({"type": "thinking", "thinking": "", "signature": "sig"}, {"type": "text", "text": "ok"}),
    make_message(content="not a list"),
], ids=["tool_use", "text+tool_use", "server_tool_use", "max_tokens", "pause_turn", "refusal", "no_stop",
        "redacted_thinking", "citations", "two_texts", "empty_text", "empty_thinking", "content_not_list"])
def test_only_complete_tool_free_replayable_answers_are_stored(message: dict[str, Any]) -> None:
    cache = make_cache()
    assert cache.put("k", message) is False
    assert cache.get("k") is None


@pytest.mark.parametrize("message", [
    make_message(),
    make_message(stop_reason="stop_sequence", stop_sequence="END"),
    make_message({"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "ok"}),
    make_message({"type": "text", "text": "cites nothing", "citations": None}),
    make_message(content=[]),
])
def test_finished_text_and_thinking_answers_are_stored(message: dict[str, Any]) -> None:
    assert make_cache().put("k", message) is True


def test_a_disabled_cache_stores_and_finds_nothing() -> None:
    for cache in (make_cache(enabled=False), make_cache(max_entries=0), make_cache(ttl_ms=0)):
        assert cache.put("k", make_message()) is False
        assert cache.get("k") is None
        assert cache.cacheable_request(make_request()) is False


def test_entries_expire_after_the_ttl() -> None:
    timer = FakeTimer()
    cache = make_cache(timer, ttl_ms=300_000)
    cache.put("k", make_message())
    timer.now += 299.9
    assert cache.get("k") is not None
    timer.now += 0.2
    assert cache.get("k") is None
    assert cache.local_size() == 0


def test_the_least_recently_used_entry_goes_at_max_entries() -> None:
    cache = make_cache(max_entries=2)
    cache.put("a", make_message())
    cache.put("b", make_message())
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", make_message())
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert cache.local_size() == 2


# -- which requests ----------------------------------------------------------------------------------


def test_a_turn_after_server_tools_is_not_cacheable() -> None:
    cache = make_cache()
    request = make_request()  # the last user turn carries tool_result blocks
    assert cache.cacheable_request(request) is True
    assert cache.cacheable_request(request, after_server_tool=True) is False


def test_the_server_tool_flag_needs_tool_results_in_the_last_user_turn() -> None:
    request = make_request(messages=[{"role": "user", "content": "Hello"}])
    assert make_cache().cacheable_request(request, after_server_tool=True) is True


def test_a_request_without_messages_is_not_cacheable() -> None:
    assert make_cache().cacheable_request(make_request(messages=[])) is False


# -- the Redis tier's failures (a fake client; the real server is in tests/integration) -------------


class FakeRedis:
    """The two calls the tier makes, failing while ``down``."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.down = False
        self.calls = 0

    def set(self, key: str, value: bytes, px: int) -> None:
        self._call()
        self.data[key] = value

    def pipeline(self, transaction: bool) -> FakeRedis:
        self._pipe: list[str] = []
        return self

    def get(self, key: str) -> None:
        self._pipe.append(key)

    def pttl(self, key: str) -> None:
        pass

    def execute(self) -> list[Any]:
        self._call()
        key = self._pipe[0]
        return [self.data.get(key), 1000 if key in self.data else -2]

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


def test_redis_failures_leave_the_local_tier_working_and_warn_once_a_minute(
        log_records: Callable[[str], list[logging.LogRecord]]) -> None:
    cache_log = log_records("lynkr.cache")
    timer, client = FakeTimer(), FakeRedis()
    client.down = True
    cache = make_cache(timer, redis_tier=RedisTier(client, ttl_ms=300_000, timer=timer))
    assert cache.put("k", make_message()) is True
    assert cache.get("k") == make_message()
    assert cache.get("other") is None
    warnings = [r for r in cache_log if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis is unavailable" in warnings[0].getMessage()
    for _ in range(20):  # retried every RETRY_AFTER_S, never more than one warning a minute
        timer.now += RETRY_AFTER_S
        cache.get("other")
    assert client.calls == 21
    assert len([r for r in cache_log if r.levelno == logging.WARNING]) == 2
    assert timer.now - 1000.0 >= WARN_EVERY_S


def test_redis_is_skipped_for_a_while_after_a_failure() -> None:
    timer, client = FakeTimer(), FakeRedis()
    client.down = True
    cache = make_cache(timer, redis_tier=RedisTier(client, ttl_ms=300_000, timer=timer))
    cache.get("a")
    cache.get("b")
    cache.put("c", make_message())
    assert client.calls == 1
    client.down = False
    timer.now += RETRY_AFTER_S
    cache.put("d", make_message())
    assert client.calls == 2
    assert "lynkr:prompt-cache:v1:d" in client.data


def test_an_entry_from_redis_lives_only_as_long_as_its_redis_copy() -> None:
    timer, client = FakeTimer(), FakeRedis()
    writer = make_cache(timer, redis_tier=RedisTier(client, ttl_ms=300_000, timer=timer))
    reader = make_cache(timer, redis_tier=RedisTier(client, ttl_ms=300_000, timer=timer))
    writer.put("k", make_message())
    assert reader.get("k") == make_message()  # the fake reports 1 s left
    client.data.clear()
    timer.now += 0.5
    assert reader.get("k") == make_message()
    timer.now += 0.6
    assert reader.get("k") is None


def test_a_foreign_or_corrupt_redis_value_is_a_miss() -> None:
    timer, client = FakeTimer(), FakeRedis()
    cache = make_cache(timer, redis_tier=RedisTier(client, ttl_ms=300_000, timer=timer))
    client.data["lynkr:prompt-cache:v1:bad"] = b"{not json"
    client.data["lynkr:prompt-cache:v1:tool"] = b'{"stop_reason": "tool_use", "content": []}'
    assert cache.get("bad") is None
    assert cache.get("tool") is None


# -- serving a hit -----------------------------------------------------------------------------------


def sdk_accumulate(events: list[dict[str, Any]]) -> Any:
    """Fold events as the official SDK's ``MessageStream`` does."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        parsed = construct_type(type_=RawMessageStreamEvent, value=event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def make_hit(message: dict[str, Any]) -> dict[str, Any]:
    return hit_message(message, prompt_tokens=prompt_tokens_of(message), request_id="req_abc123",
                       requested_model="claude-opus-4-5")


def test_a_hit_is_reported_as_a_cache_read_of_the_whole_prompt() -> None:
    stored = make_message()
    before = copy.deepcopy(stored)
    hit = make_hit(stored)
    assert hit["id"] == "msg_abc123"
    assert hit["model"] == "claude-opus-4-5"
    assert hit["usage"] == {"input_tokens": 0, "cache_read_input_tokens": 150,
                            "cache_creation_input_tokens": 0, "output_tokens": 7}
    assert hit["content"] == stored["content"]
    assert (hit["stop_reason"], hit["stop_sequence"]) == ("end_turn", None)
    assert stored == before


REPLAYED = [
    make_message(),
    make_message({"type": "thinking", "thinking": "The user wants", "signature": "EqQBCkgIARABGAI"},
                 {"type": "text", "text": "a.py"}, stop_reason="stop_sequence", stop_sequence="END"),
    make_message({"type": "text", "text": "before"}, {"type": "thinking", "thinking": "x", "signature": ""},
                 {"type": "text", "text": "after"}),
    make_message(content=[]),
]


@pytest.mark.parametrize("stored", REPLAYED, ids=["text", "thinking_text_stop_sequence", "interleaved", "empty"])
def test_a_hit_replays_as_a_valid_stream_the_sdk_accumulates(stored: dict[str, Any]) -> None:
    assert storable_answer(stored)
    hit = make_hit(stored)
    builder = StreamBuilder(message_id=hit["id"], model=hit["model"])
    events = hit_events(hit, builder)
    validate_stream(events)
    assert builder.accumulator.message == hit
    sdk = sdk_accumulate(events).to_dict()
    assert sdk["id"] == "msg_abc123"
    assert sdk["model"] == "claude-opus-4-5"
    assert sdk["content"] == [{k: v for k, v in b.items() if k != "citations"} for b in hit["content"]]
    assert (sdk["stop_reason"], sdk["stop_sequence"]) == (hit["stop_reason"], hit["stop_sequence"])
    assert {k: sdk["usage"][k] for k in hit["usage"]} == hit["usage"]
    assert events[0]["message"]["usage"]["cache_read_input_tokens"] == hit["usage"]["cache_read_input_tokens"]


# -- usage on a miss -----------------------------------------------------------------------------------


def test_a_miss_that_reported_no_prompt_figures_reports_the_prompt_as_a_cache_write() -> None:
    usage = miss_usage({"input_tokens": 0, "output_tokens": 5}, 100)
    assert usage == {"input_tokens": 0, "output_tokens": 5, "cache_creation_input_tokens": 100}


def test_a_miss_that_reported_its_input_is_never_recounted() -> None:
    def count() -> int:
        raise AssertionError("the prompt must not be counted when the upstream reported its input")

    assert miss_usage({"input_tokens": 30, "output_tokens": 5}, count) == {"input_tokens": 30, "output_tokens": 5}


@pytest.mark.parametrize("input_tokens", [100, 130])
def test_a_miss_that_counted_the_whole_prompt_keeps_its_usage(input_tokens: int) -> None:
    usage = {"input_tokens": input_tokens, "output_tokens": 5}
    assert miss_usage(usage, 100) == usage


@pytest.mark.parametrize("usage", [
    {"input_tokens": 30, "output_tokens": 5, "cache_read_input_tokens": 0},
    {"input_tokens": 30, "output_tokens": 5, "cache_creation_input_tokens": 0},
    {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 7,
     "server_tool_use": {"web_search_requests": 1}},
])
def test_a_miss_with_upstream_cache_figures_passes_them_through(usage: dict[str, Any]) -> None:
    def never() -> int:
        raise AssertionError("the prompt needs no counting when the upstream reported its cache")

    assert miss_usage(usage, never) == usage


def test_a_miss_counts_the_prompt_only_when_needed() -> None:
    assert miss_usage({"input_tokens": 0}, lambda: 42) == {"input_tokens": 0, "cache_creation_input_tokens": 42}


def test_a_streamed_miss_reports_the_same_usage_as_a_json_one() -> None:
    builder = MissStreamBuilder(prompt_tokens=100, message_id="msg_1", model="claude-sonnet-4-5", input_tokens=0)
    events = builder.text("hi") + builder.finish("end_turn", {"output_tokens": 2, "cache_read_input_tokens": None})
    validate_stream(events)
    assert events[-2]["usage"] == {"input_tokens": 0, "output_tokens": 2, "cache_creation_input_tokens": 100}


@pytest.mark.parametrize("stop_reason", ["tool_use", "max_tokens"])
def test_a_streamed_miss_that_will_not_be_stored_keeps_the_upstream_usage(stop_reason: str) -> None:
    builder = MissStreamBuilder(prompt_tokens=100, message_id="msg_1", model="m", input_tokens=30)
    events = builder.text("hi") + builder.finish(stop_reason, {"output_tokens": 2})
    assert events[-2]["usage"] == {"input_tokens": 30, "output_tokens": 2}


def test_a_streamed_tool_call_keeps_the_upstream_usage_whatever_the_stop_reason() -> None:
    builder = MissStreamBuilder(prompt_tokens=100, message_id="msg_1", model="m", input_tokens=30)
    events = builder.tool_start(0, "toolu_1", "Read") + builder.finish("end_turn", {"output_tokens": 2})
    assert events[-2]["usage"] == {"input_tokens": 30, "output_tokens": 2}


def test_a_streamed_miss_keeps_upstream_cache_figures() -> None:
    builder = MissStreamBuilder(prompt_tokens=100, message_id="msg_1", model="m")
    events = builder.finish("end_turn", {"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 0})
    assert events[-2]["usage"] == {"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 0}


# -- assembly and threads ----------------------------------------------------------------------------


def make_settings(**overrides: Any) -> Any:
    values = {"prompt_cache_enabled": True, "prompt_cache_max_entries": 3, "prompt_cache_ttl_ms": 1000,
              "redis_url": ""}
    return types.SimpleNamespace(**{**values, **overrides})


def test_from_config_adds_the_redis_tier_only_when_a_url_is_set() -> None:
    assert PromptCache.from_config(make_settings()).redis is None
    cache = PromptCache.from_config(make_settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(cache.redis, RedisTier)
    assert cache.redis.ttl_ms == 1000
    cache.close()
    assert PromptCache.from_config(make_settings(prompt_cache_enabled=False, redis_url="redis://x")).redis is None
    assert PromptCache.from_config(make_settings(prompt_cache_enabled=False)).enabled is False
    assert PromptCache.from_config(make_settings(prompt_cache_ttl_ms=0, redis_url="redis://x")).redis is None


def test_threads_share_one_cache_safely() -> None:
    cache = make_cache(max_entries=50)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(300):
                cache.put(f"{worker}-{i % 80}", make_message())
                got = cache.get(f"{(worker + 1) % 8}-{i % 80}")
                assert got is None or got["stop_reason"] == "end_turn"
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert cache.local_size() == 50
