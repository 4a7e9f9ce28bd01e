"""The gateway's whole log, as written by ``lynkr serve``: every line JSON, access lines complete,
no secret anywhere.

One scenario runs once for the module (requests by ``x-api-key`` and by Bearer, a refused key,
and an upstream error that echoes the Databricks token), the server is stopped, and each test
checks one property of the log file it left.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.e2e.conftest import launch_gateway, stop_gateway, wait_live
from tests.e2e.helpers import Gateway, json_lines, message_body, read_sse
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream

GATEWAY_KEY = "sk-secret-key-1234567890"
DATABRICKS_KEY = "dapi-secret-abcdef123456"
CLIENT_REQUEST_ID = "e2e-log-req-0001"
BASE_FIELDS = ("request_id", "method", "path", "status", "duration_ms")
UPSTREAM_MODEL = "databricks-claude-sonnet-4-5"


@dataclass
class Scenario:
    """What the scenario sent and what it left behind."""

    responses: dict[str, requests.Response]
    upstream: FakeAnthropicUpstream
    exit_code: int
    log: str

    def access_lines(self) -> dict[str, dict[str, Any]]:
        """Access-log records by request id (lines that are not JSON are another test's concern)."""
        records = []
        for line in self.log.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return {r["request_id"]: r for r in records if isinstance(r, dict) and r.get("logger") == "lynkr.access"}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Runs the scenario against a strict fake that only accepts the secret token, then stops the server."""
    with FakeAnthropicUpstream(strict=True, token=DATABRICKS_KEY) as upstream:
        gateway = launch_gateway(tmp_path_factory.mktemp("logs"), upstream,
                                 LYNKR_API_KEYS=GATEWAY_KEY, DATABRICKS_API_KEY=DATABRICKS_KEY)
        try:
            wait_live(gateway)
            responses = _send_requests(gateway, upstream)
            exit_code = gateway.stop(signal.SIGTERM)
        finally:
            problem = stop_gateway(gateway)
        assert problem is None, problem
        yield Scenario(responses, upstream, exit_code, gateway.log_text())


def _send_requests(gateway: Gateway, upstream: FakeAnthropicUpstream) -> dict[str, requests.Response]:
    responses = {"x-api-key": gateway.post(message_body(), headers={"x-api-key": GATEWAY_KEY,
                                                                   "X-Request-ID": CLIENT_REQUEST_ID})}
    with gateway.post(message_body(stream=True), headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
                      stream=True) as streamed:
        assert read_sse(streamed).types[-1] == "message_stop"
    responses["bearer-stream"] = streamed
    responses["wrong-key"] = gateway.post(message_body(), headers={"Authorization": f"Bearer {GATEWAY_KEY}-wrong"})
    upstream.script(ErrorReply(401, "authentication_error", f"Invalid token: Bearer {DATABRICKS_KEY}"))
    responses["upstream-401"] = gateway.post(message_body(), headers={"x-api-key": GATEWAY_KEY})
    return responses


def test_scenario_ran_as_planned(logged_run: Scenario) -> None:
    """Statuses, the forwarded token and a clean exit: the log below is of a real run."""
    statuses = {name: response.status_code for name, response in logged_run.responses.items()}
    assert statuses == {"x-api-key": 200, "bearer-stream": 200, "wrong-key": 401, "upstream-401": 401}
    assert [r.headers["authorization"] for r in logged_run.upstream.requests] == [f"Bearer {DATABRICKS_KEY}"] * 3
    assert logged_run.exit_code == 0


def test_every_log_line_is_json(logged_run: Scenario) -> None:
    """Each line of the file, none skipped, is one JSON object with the standard fields."""
    records = json_lines(logged_run.log)
    assert records
    for record in records:
        assert {"level", "logger", "message", "timestamp"} <= set(record), record


def test_no_secret_in_log(logged_run: Scenario) -> None:
    """Neither key nor any ``Bearer sk-`` appears; the upstream's echoed token was logged redacted."""
    for secret in (GATEWAY_KEY, DATABRICKS_KEY, "Bearer sk-"):
        assert secret not in logged_run.log, f"{secret!r} appears in the log"
    assert "Invalid token: Bearer [REDACTED]" in logged_run.log


def test_access_lines_carry_request_fields(logged_run: Scenario) -> None:
    """One access line per request with id, method, path, status, duration; provider, model, route when routed."""
    lines = logged_run.access_lines()
    for name, response in logged_run.responses.items():
        line = lines[response.headers["X-Request-ID"]]
        assert set(BASE_FIELDS) <= set(line), (name, line)
        assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/messages", response.status_code)
        assert line["duration_ms"] > 0
    for name in ("x-api-key", "bearer-stream", "upstream-401"):
        line = lines[logged_run.responses[name].headers["X-Request-ID"]]
        assert (line.get("provider"), line.get("model"), line.get("route_reason")) == (
            "databricks", UPSTREAM_MODEL, "static"), (name, line)


def test_client_request_id_is_echoed_and_logged(logged_run: Scenario) -> None:
    """The client's X-Request-ID comes back in the response and names its access line."""
    assert logged_run.responses["x-api-key"].headers["X-Request-ID"] == CLIENT_REQUEST_ID
    line = logged_run.access_lines()[CLIENT_REQUEST_ID]
    assert (line["status"], line["provider"], line["model"]) == (200, "databricks", UPSTREAM_MODEL)
