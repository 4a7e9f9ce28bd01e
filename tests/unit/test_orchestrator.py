"""The orchestrator built as the factory builds it, over Databricks faked with ``responses``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import responses

from app.accounting.usage import RequestRecord
from app.agent.service import Agent
from app.cache.prompt import PromptCache
from app.config import Config
from app.errors import (
    BillingError,
    ConnectionBrokenError,
    LynkrError,
    UpstreamError,
)
from app.exchange import Exchange
from app.orchestrator import Answer, Orchestrator, StreamAnswer
from app.providers import build_providers
from app.providers.base import CallContext
from app.providers.capabilities import CapabilityTable
from app.resilience.breaker import BreakerConfig, InProcessStore
from app.resilience.retry import BreakerRegistry, RetryPolicy
from app.storage.recorder import Job, Recorder
from app.tools.base import ToolError
from app.web.streaming import generate
from tests.conftest import DATABRICKS_URL
from tests.fakes.anthropic_events import sse_frame, text_events

UPSTREAM_MODEL = "databricks-claude-sonnet-4-5"
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": UPSTREAM_MODEL,
           "content": [{"type": "text", "text": "Three."}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 14, "output_tokens": 2}}


class HeldRecorder(Recorder):
    """Keeps the write jobs instead of running them (no database in these tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Job] = []

    def submit(self, job: Job, holds_bytes: int = 0) -> None:
        self.jobs.append(job)


class Built:
    """An orchestrator as ``create_app`` assembles it, with what the tests look at."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.recorder = HeldRecorder()
        self.store = InProcessStore()
        self.cache = PromptCache()
        providers = build_providers(config, CapabilityTable())
        self.breakers = BreakerRegistry(providers, BreakerConfig(5, 1, 30_000), store=self.store)
        self.orchestrator = Orchestrator(config, providers, self.recorder, self.breakers,
                                         RetryPolicy(0, 1, 1, 1_000), [], cache=self.cache, agent=Agent(config))
        self.released = 0

    def exchange(self, **overrides: Any) -> Exchange:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 64,
                "messages": [{"role": "user", "content": "How many r's in strawberry?"}], **overrides}

        def release() -> None:
            self.released += 1

        return Exchange(body, CallContext(request_id="req_orch", requested_model="claude-sonnet-4-5"),
                        RequestRecord(request_id="req_orch", path="/v1/messages"), self.cache, release)

    def failures(self) -> int:
        return self.store.read("databricks").failures


@pytest.fixture
def built(make_config: Callable[..., Config]) -> Built:
    return Built(make_config(tool_execution_mode="client"))


def test_a_cache_hit_settles_once_with_200(built: Built) -> None:
    ex = built.exchange()
    built.cache.put(ex.facts.cache_key("databricks", UPSTREAM_MODEL), MESSAGE)

    answer = built.orchestrator.handle(ex)

    assert isinstance(answer, Answer)
    assert answer.headers == {"X-Lynkr-Cache": "hit"}
    assert answer.message["content"] == MESSAGE["content"]
    assert answer.message["model"] == "claude-sonnet-4-5"
    assert (ex.record.status, ex.record.provider, ex.record.model, ex.record.route_reason) == (
        200, "databricks", UPSTREAM_MODEL, "prompt_cache")
    assert ex.record.attempts == []
    assert built.released == 1
    assert len(built.recorder.jobs) == 1

    built.orchestrator.settle(ex, failure=UpstreamError("late", provider="databricks"))

    assert (ex.record.status, built.released, len(built.recorder.jobs), built.failures()) == (200, 1, 1, 0)


@responses.activate
def test_an_answer_settles_once_with_200_and_is_cached(built: Built) -> None:
    responses.post(DATABRICKS_URL, json=MESSAGE)
    ex = built.exchange()

    answer = built.orchestrator.handle(ex)

    assert isinstance(answer, Answer)
    assert answer.message["content"] == MESSAGE["content"]
    assert (ex.record.status, ex.record.provider, ex.record.model) == (200, "databricks", UPSTREAM_MODEL)
    assert [(a.provider, a.status) for a in ex.record.attempts] == [("databricks", 200)]
    assert (built.released, len(built.recorder.jobs)) == (1, 1)
    assert built.cache.get(ex.facts.cache_key("databricks", UPSTREAM_MODEL)) is not None

    again = built.exchange()
    assert built.orchestrator.handle(again).headers == {"X-Lynkr-Cache": "hit"}
    assert len(responses.calls) == 1


@responses.activate
def test_a_failure_settles_with_its_status_and_tells_the_breaker_once(built: Built) -> None:
    responses.post(DATABRICKS_URL, status=500, json={"error": {"message": "upstream exploded"}})
    ex = built.exchange()

    with pytest.raises(LynkrError) as caught:
        built.orchestrator.handle(ex)

    failure = caught.value
    assert (failure.status, failure.error_type, failure.message) == (500, "api_error", "upstream exploded")
    assert failure.heard_by_breaker is True
    assert (ex.record.status, ex.record.error_type) == (500, "api_error")
    assert [(a.provider, a.status) for a in ex.record.attempts] == [("databricks", 500)]
    assert (built.released, len(built.recorder.jobs), built.failures()) == (1, 1, 1)

    built.orchestrator.settle(ex, failure=failure)

    assert (built.released, len(built.recorder.jobs), built.failures()) == (1, 1, 1)


@responses.activate
def test_a_client_error_settles_with_its_status_without_a_breaker_failure(built: Built) -> None:
    responses.post(DATABRICKS_URL, status=400, json={"error": {"message": "max_tokens: too large"}})
    ex = built.exchange()

    with pytest.raises(LynkrError) as caught:
        built.orchestrator.handle(ex)

    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    assert (ex.record.status, built.released, built.failures()) == (400, 1, 0)


def test_a_stream_broken_after_it_opened_tells_the_breaker_once(built: Built) -> None:
    ex = built.exchange()
    ex.record.provider = "databricks"
    broken = ConnectionBrokenError("The upstream reset the connection.", provider="databricks")

    built.orchestrator.settle(ex, failure=broken)
    built.orchestrator.settle(ex, failure=broken)

    assert broken.heard_by_breaker is True
    assert (ex.record.status, ex.record.error_type) == (502, "api_error")
    assert (built.released, len(built.recorder.jobs), built.failures()) == (1, 1, 1)

    other = built.exchange()
    built.orchestrator.settle(other, failure=broken)

    assert built.failures() == 1


def test_a_refusal_that_is_not_the_upstreams_is_not_the_breakers(built: Built) -> None:
    ex = built.exchange()
    ex.record.provider = "databricks"

    built.orchestrator.settle(ex, failure=BillingError("Budget spent."))

    assert (ex.record.status, ex.record.error_type, built.failures()) == (402, "billing_error", 0)


def test_settle_with_a_status_records_it(built: Built) -> None:
    ex = built.exchange()

    built.orchestrator.settle(ex, status=499)
    built.orchestrator.settle(ex)

    assert (ex.record.status, built.released, len(built.recorder.jobs)) == (499, 1, 1)


def sse_body(events: list[dict[str, Any]]) -> bytes:
    return b"".join(sse_frame(event) for event in events)


@responses.activate
def test_a_stream_settles_once_when_it_ends_and_is_cached(built: Built) -> None:
    responses.post(DATABRICKS_URL, body=sse_body(text_events(["Thr", "ee."])), content_type="text/event-stream")
    ex = built.exchange(stream=True)

    answer = built.orchestrator.handle(ex)

    assert isinstance(answer, StreamAnswer)
    assert built.released == 0
    chunks = list(generate(answer.start, answer.builder, 10.0, answer.on_done))
    assert b"event: message_stop" in chunks[-1]
    assert (ex.record.status, built.released, len(built.recorder.jobs)) == (200, 1, 1)
    assert built.cache.get(ex.facts.cache_key("databricks", UPSTREAM_MODEL)) is not None

    answer.on_done(answer.builder, None)
    assert (built.released, len(built.recorder.jobs)) == (1, 1)


@responses.activate
def test_a_stream_whose_client_went_away_settles_as_499_and_is_not_cached(built: Built) -> None:
    responses.post(DATABRICKS_URL, body=sse_body(text_events(["Thr", "ee."])), content_type="text/event-stream")
    ex = built.exchange(stream=True)
    answer = built.orchestrator.handle(ex)
    assert isinstance(answer, StreamAnswer)

    answer.on_done(answer.builder, None)
    answer.start.end()

    assert (ex.record.status, built.released, len(built.recorder.jobs), built.failures()) == (499, 1, 1, 0)
    assert built.cache.get(ex.facts.cache_key("databricks", UPSTREAM_MODEL)) is None


@responses.activate
def test_a_stream_refused_before_the_first_byte_raises_and_settles(built: Built) -> None:
    responses.post(DATABRICKS_URL, status=529, json={"type": "error", "error": {"type": "overloaded_error",
                                                                                  "message": "Overloaded"}})
    ex = built.exchange(stream=True)

    with pytest.raises(LynkrError) as caught:
        built.orchestrator.handle(ex)

    assert (caught.value.status, caught.value.error_type) == (529, "overloaded_error")
    assert (ex.record.status, built.released, len(built.recorder.jobs), built.failures()) == (529, 1, 1, 1)


class HeldBudgets:
    """Budgets that grant every hold and record how each is settled."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.settled: list[tuple[str, str, dict[str, int]]] = []

    def admit(self, api_key: Any, session_id: Any, model: str, request: Any, **_: Any) -> str:
        self.held.append(f"hold_{len(self.held)}")
        return self.held[-1]

    def settle(self, admission: str, model: str, usage: dict[str, int]) -> None:
        self.settled.append((admission, model, usage))


@responses.activate
def test_a_tools_model_call_that_fails_releases_its_budget_hold(built: Built) -> None:
    budgets = HeldBudgets()
    built.orchestrator.budgets = budgets
    responses.post(DATABRICKS_URL, status=400, json={"error": {"message": "max_tokens: too large"}})
    ex = built.exchange()
    ask = built.orchestrator._model_call(ex, built.orchestrator.router.candidates(ex.body, ex.facts))

    with pytest.raises(ToolError, match="the model call failed"):
        ask("Review this diff.", "diff --git a/x b/x")

    assert budgets.settled == [("hold_0", UPSTREAM_MODEL, {})]
