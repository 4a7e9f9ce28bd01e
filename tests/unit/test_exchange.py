"""RequestFacts computes each fact once; an Exchange settles once and gives its slot back once."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson
import pytest

from app import exchange as exchange_module
from app.accounting.usage import RequestRecord
from app.anthropic.encoded import Encoded
from app.anthropic.tokens import estimate_tokens
from app.cache.key import cache_key
from app.cache.prompt import PromptCache
from app.exchange import Exchange, RequestFacts
from app.providers.base import CallContext

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "How many r's are in strawberry?"}], **overrides}


class CountingCache(PromptCache):
    """A prompt cache that counts how often the facts ask it."""

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__(enabled=enabled)
        self.key_calls: list[tuple[str, str]] = []
        self.cacheable_calls = 0

    def key(self, request: dict[str, Any], provider: str, model: str) -> str:
        self.key_calls.append((provider, model))
        return super().key(request, provider, model)

    def cacheable_request(self, request: dict[str, Any], *, after_server_tool: bool = False) -> bool:
        self.cacheable_calls += 1
        return super().cacheable_request(request, after_server_tool=after_server_tool)


def counted(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> list[dict[str, Any]]:
    """Replace ``app.exchange.<name>`` by a stub answering ``value``; each call's argument is recorded."""
    calls: list[dict[str, Any]] = []

    def stub(request: dict[str, Any], *encoded: Any) -> Any:
        calls.append(request)
        return value

    monkeypatch.setattr(exchange_module, name, stub)
    return calls


def make_exchange(cache: PromptCache | None = None, released: list[int] | None = None,
                  **overrides: Any) -> Exchange:
    released = released if released is not None else []
    return Exchange(body(**overrides), CallContext(request_id="req_1", requested_model="claude-sonnet-4-5"),
                    RequestRecord(request_id="req_1", path="/v1/messages"), cache or PromptCache(),
                    lambda: released.append(1))


@pytest.mark.parametrize(("name", "attribute", "value"), [
    ("estimate_tokens", "estimated_tokens", 1234),
    ("count_tokens", "prompt_tokens", 987),
])
def test_each_body_fact_is_computed_once(monkeypatch: pytest.MonkeyPatch, name: str, attribute: str,
                                         value: Any) -> None:
    calls = counted(monkeypatch, name, value)
    request = body()
    facts = RequestFacts(request, PromptCache())

    assert (getattr(facts, attribute), getattr(facts, attribute)) == (value, value)
    assert calls == [request]


def test_the_facts_are_those_of_the_request() -> None:
    request = body()
    facts = RequestFacts(request, PromptCache())

    assert facts.estimated_tokens == estimate_tokens(request)
    assert facts.images is False
    assert facts.cacheable is True


def test_images_are_seen_in_a_message_and_in_a_tool_result() -> None:
    in_message = body(messages=[{"role": "user", "content": [IMAGE, {"type": "text", "text": "what is it?"}]}])
    in_result = body(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [IMAGE]}]}])

    assert RequestFacts(in_message, PromptCache()).images is True
    assert RequestFacts(in_result, PromptCache()).images is True


def test_cacheable_asks_the_cache_once_and_follows_it() -> None:
    cache = CountingCache()
    facts = RequestFacts(body(), cache)

    assert (facts.cacheable, facts.cacheable) == (True, True)
    assert cache.cacheable_calls == 1
    assert RequestFacts(body(), PromptCache(enabled=False)).cacheable is False


def test_cache_key_is_memoised_per_target() -> None:
    cache = CountingCache()
    request = body()
    facts = RequestFacts(request, cache)

    databricks = facts.cache_key("databricks", "databricks-claude-sonnet-4-5")
    again = facts.cache_key("databricks", "databricks-claude-sonnet-4-5")
    ollama = facts.cache_key("ollama", "qwen2.5-coder")

    assert databricks == again == cache_key(request, "databricks", "databricks-claude-sonnet-4-5")
    assert ollama == cache_key(request, "ollama", "qwen2.5-coder")
    assert ollama != databricks
    assert cache.key_calls == [("databricks", "databricks-claude-sonnet-4-5"), ("ollama", "qwen2.5-coder")]


def test_an_exchange_starts_with_the_clients_body_upstream() -> None:
    ex = make_exchange(stream=True)

    assert ex.upstream is ex.body
    assert ex.facts.request is ex.body
    assert ex.stream is True
    assert make_exchange().stream is False


def test_use_upstream_switches_the_request_and_its_facts() -> None:
    ex = make_exchange()
    client_facts = ex.facts
    assert client_facts.estimated_tokens == estimate_tokens(ex.body)
    turn = body(tools=[{"name": "workspace_read", "description": "Read a file",
                        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}])

    ex.use_upstream(turn)

    assert ex.upstream is turn
    assert ex.facts is not client_facts
    assert ex.facts.request is turn
    assert ex.facts.estimated_tokens == estimate_tokens(turn) > client_facts.estimated_tokens
    assert ex.body == body()


def test_a_turns_encoded_messages_go_to_the_facts_and_the_upstream_calls() -> None:
    ex = make_exchange()
    assert ex.upstream_ctx is ex.ctx
    turn = body(messages=[*ex.body["messages"], {"role": "assistant", "content": "a stored step"}])
    encoded = Encoded(turn["messages"])

    ex.use_upstream(turn, encoded)

    assert ex.upstream_ctx.encoded is encoded
    assert ex.facts.encoded is encoded
    assert ex.ctx.encoded is not encoded  # the client's stay the ledger's (its transcript notes)
    assert ex.upstream_ctx.request_id == ex.ctx.request_id


def test_settle_is_true_once_and_releases_the_slot_once() -> None:
    released: list[int] = []
    ex = make_exchange(released=released)

    assert ex.settle() is True
    assert ex.settle() is False
    assert released == [1]


def settle_twice_at_once(ex: Exchange) -> list[bool]:
    """What ``ex.settle()`` returned to two threads released together."""
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def settle() -> None:
        barrier.wait()
        results.append(ex.settle())

    threads = [threading.Thread(target=settle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_settle_from_two_threads_releases_the_slot_once() -> None:
    for _ in range(50):
        released: list[int] = []
        ex = make_exchange(released=released)

        assert sorted(settle_twice_at_once(ex)) == [False, True]
        assert released == [1]


def test_the_facts_use_the_clients_encoded_messages_and_their_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex
    request = body(messages=[{"role": "user", "content": [IMAGE, {"type": "text", "text": f"{tag} what is it?"}]},
                             {"role": "assistant", "content": f"{tag} a cat"}])
    given = Encoded(request["messages"])
    facts = RequestFacts(request, PromptCache(), given)

    assert facts.encoded is given
    assert facts.estimated_tokens == estimate_tokens(request)
    assert facts.images is True
    assert given.notes[0]["has_images"] is True
    assert "has_images" not in given.notes[1]  # the first answered
    looked: list[object] = []
    monkeypatch.setattr(exchange_module, "has_images", lambda request: looked.append(request) or False)
    resent = orjson.loads(orjson.dumps(request))
    assert RequestFacts(resent, PromptCache(), Encoded(resent["messages"])).images is True
    assert looked == []  # from the notes


def test_an_agent_turn_reuses_the_clients_bytes_and_encodes_the_rest() -> None:
    client = body()
    given = Encoded(client["messages"])
    turn = body(messages=[*client["messages"], {"role": "assistant", "content": "Let me look."}])
    facts = RequestFacts(turn, PromptCache(), given)

    assert facts.encoded is not None
    assert facts.encoded.parts == [orjson.dumps(m) for m in turn["messages"]]
    assert facts.encoded.parts[0] is given.parts[0]  # taken, not serialised again
    assert facts.estimated_tokens == estimate_tokens(turn)
