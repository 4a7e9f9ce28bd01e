"""Shared pieces of the ingress fuzz suites: the app per provider family over a fake upstream on
loopback, hypothesis settings in two sizes, and the checks every answer must pass.

The bounded form runs in CI (few examples, a deadline per example, derandomized so a run is
repeatable); ``LYNKR_FUZZ=full`` runs ``LYNKR_FUZZ_EXAMPLES`` (default 2000) random examples instead;
``--hypothesis-show-statistics`` shows how the answers' statuses were spread.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context

from app import create_app
from app.accounting import ledger
from app.accounting.usage import RequestRecord, write_record
from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from app.config import Config
from app.resilience.drain import DrainFlag
from app.resilience.retry import InProcessStore
from app.storage.db import db
from app.storage.models import ClientRequest
from app.web import error_handlers
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAIUpstream

FULL = os.environ.get("LYNKR_FUZZ") == "full"
FULL_EXAMPLES = int(os.environ.get("LYNKR_FUZZ_EXAMPLES", "2000"))
SLOWEST_ANSWER_S = 10.0  # "never a hang": any single answer taking longer fails the example
FAMILIES = ("anthropic", "chat-completions", "ollama")


def fuzz_settings(ci_examples: int) -> settings:
    """Hypothesis settings: ``ci_examples`` derandomized examples with a deadline, or the full run."""
    return settings(
        max_examples=FULL_EXAMPLES if FULL else ci_examples,
        deadline=SLOWEST_ANSWER_S * 1000,
        derandomize=not FULL,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                               HealthCheck.function_scoped_fixture],
    )


@dataclass
class Target:
    """One app answering through one provider family's fake upstream, and the usage records it wrote
    (request id -> times written: the database would hide a second write of the same id)."""

    family: str
    app: Flask
    writes: Counter[str] = field(default_factory=Counter)


@contextlib.contextmanager
def target(family: str, workdir: Path) -> Iterator[Target]:
    """The app for ``family`` over its fake upstream (no retries, no fallback; the prompt cache on, as
    by default, so repeated bodies are answered from it)."""
    fakes = {"anthropic": FakeAnthropicUpstream, "chat-completions": FakeOpenAIUpstream, "ollama": FakeOllama}
    with fakes[family]() as fake:
        settings_: dict[str, Any] = {
            "session_db_path": str(workdir / "lynkr.db"), "retry_max_retries": 0, "fallback_enabled": False,
            "keepalive_commit_ms": 2000,
            "budget_key_daily_tokens": 10**12, "budget_session_tokens": 10**12,
        }
        if family == "anthropic":
            settings_.update(model_provider="databricks", databricks_api_base=fake.url,
                             databricks_endpoint_path="/v1/messages", databricks_api_key="dapi-fuzz")
        elif family == "chat-completions":
            settings_.update(model_provider="openai-compatible", openai_compatible_endpoint=fake.base_url,
                             openai_compatible_model="gpt-4o")
        else:
            settings_.update(model_provider="ollama", ollama_endpoint=fake.url, ollama_model="llama3.1")
        app = create_app(Config(**settings_), drain=DrainFlag(), breaker_store=InProcessStore())
        answered_by = Target(family, app)

        def counted(record: RequestRecord) -> None:
            answered_by.writes[record.request_id] += 1
            write_record(record)

        with pytest.MonkeyPatch.context() as patch:
            for module in (ledger, error_handlers):  # the two places a usage row is written
                patch.setattr(module, "write_record", counted)
            try:
                yield answered_by
            finally:
                app.extensions["lynkr"].recorder.flush()


def post_messages(app: Flask, raw: bytes) -> Any:
    """POST ``raw`` to /v1/messages; fails when the answer takes longer than :data:`SLOWEST_ANSWER_S`."""
    started = time.monotonic()
    response = app.test_client().post("/v1/messages", data=raw, content_type="application/json",
                                      headers={"anthropic-version": "2023-06-01"})
    response.get_data()  # a stream is read to its end
    elapsed = time.monotonic() - started
    assert elapsed < SLOWEST_ANSWER_S, f"answer took {elapsed:.1f} s"
    return response


def check_answer(response: Any) -> None:
    """Never a 5xx; an error is the Anthropic envelope with our request id; a stream keeps the grammar."""
    status = response.status_code
    if currently_in_test_context():
        event(f"status {status}")
    assert status < 500, f"{status}: {response.get_data()[:500]!r}"
    assert response.headers["request-id"] == response.headers["X-Request-ID"]
    if status >= 400:
        check_envelope(response.get_data(), response.headers["request-id"])
    elif response.mimetype == "text/event-stream":
        events = [event.json() for event in SSEDecoder().feed(response.get_data())]
        validate_stream(events)
    else:
        message = orjson.loads(response.get_data())
        assert message["type"] == "message"


def check_envelope(raw: bytes, request_id: str) -> None:
    """``raw`` is exactly ``{"type":"error","error":{"type":…,"message":…},"request_id":…}``."""
    body = orjson.loads(raw)
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert isinstance(body["error"]["type"], str)
    assert isinstance(body["error"]["message"], str)
    assert body["request_id"] == request_id


def check_one_usage_row(answered_by: Target, request_id: str, earlier: Counter[str] | None = None) -> None:
    """The request was recorded once: one write more than ``earlier`` (a client may reuse its own
    X-Request-ID) and one row (after the writer caught up)."""
    assert answered_by.app.extensions["lynkr"].recorder.flush()
    assert answered_by.writes[request_id] - (earlier or Counter())[request_id] == 1
    with db.connection_context():
        assert ClientRequest.select().where(ClientRequest.request_id == request_id).count() == 1
