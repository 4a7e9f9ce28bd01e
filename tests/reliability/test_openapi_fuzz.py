"""schemathesis against the OpenAPI document the gateway serves at /openapi.json: requests that fit
the document and requests that break it (negative mode), on every route, through the Flask app over
a fake Anthropic-format upstream on loopback.

Every answer: never a 5xx, never slower than ``SLOWEST_ANSWER_S``, an error is the Anthropic
envelope with the request id, and a /v1/messages request is recorded exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.reliability.fuzzing import (
    FULL,
    SLOWEST_ANSWER_S,
    Target,
    check_envelope,
    check_one_usage_row,
    fuzz_settings,
    target,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with target("anthropic", tmp_path_factory.mktemp("openapi-fuzz")) as answered_by:
        yield answered_by


# The packaged document, the one /openapi.json serves (tests/integration/test_openapi.py checks
# both). Loaded at import: schemathesis' lazy fixture loader does not run under pytest 9.
schema = schemathesis.openapi.from_dict(json.loads(resources.files("app.web").joinpath("openapi.json").read_text()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# The coverage phase (every boundary of every schema, deterministically) takes minutes: full runs only.
schema.config.phases.coverage.enabled = FULL


@schema.parametrize()
@fuzz_settings(ci_examples=5)
def test_every_route_answers_or_refuses_with_the_envelope(gateway: Target, case: Any) -> None:
    started = time.monotonic()
    response = case.call(app=gateway.app)
    elapsed = time.monotonic() - started
    assert elapsed < SLOWEST_ANSWER_S, f"{case.method} {case.path} took {elapsed:.1f} s"
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    [request_id] = response.headers["request-id"]  # lowercase names, list values
    assert response.headers["x-request-id"] == [request_id]
    if response.status_code >= 400 and not (case.path == "/health/ready" and response.status_code == 503):
        check_envelope(response.content, request_id)
    if case.path == "/v1/messages":
        check_one_usage_row(gateway, request_id)
