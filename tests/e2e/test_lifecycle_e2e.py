"""One request lifecycle through real gunicorn, in the mode users run (server tools on) and in client mode.

- With the defaults (``TOOL_EXECUTION_MODE=server``, ``WORKSPACE_ROOT`` set, the prompt cache on),
  two identical tool-free requests reach the upstream once, as JSON and as SSE.
- A broken upstream ends the client's response as an error — an HTTP error for JSON, an ``error``
  event for SSE — never as a finished answer: a stream that ends without ``message_stop``
  (silent EOF), an ``error`` frame mid-stream, a reset mid-stream, a JSON body cut after its
  headers; also at the agent's second step, after a server tool ran.
- Each such request leaves one usage row with the failure's status.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, SSERead, message_body, read_sse, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, StreamReply
from tests.fakes.behaviours import JsonReply

MODES = ("server", "client")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A small workspace for the server tools."""
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# demo\n")
    return root


def start(make_gateway: Callable[..., Gateway], workspace: Path, mode: str, **env: Any) -> Gateway:
    """``lynkr serve`` with the tool mode ``mode``; server mode is the default, so it is not set."""
    settings: dict[str, Any] = {"WORKSPACE_ROOT": str(workspace), "PROMPT_CACHE_ENABLED": None, **env}
    if mode == "client":
        settings["TOOL_EXECUTION_MODE"] = "client"
    return make_gateway(**settings)


def usage_rows(gateway: Gateway, request_id: str) -> list[tuple[int, str | None]]:
    """``(status, error_type)`` of the usage rows of ``request_id``, once the writer has stored them."""
    database = gateway.workdir / "lynkr.db"

    def rows() -> list[tuple[int, str | None]]:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT status, error_type FROM client_requests WHERE request_id = ?",
                                      (request_id,)).fetchall()

    wait_until(lambda: bool(rows()), timeout=10)
    return rows()


def post(session: requests.Session, gateway: Gateway, body: dict[str, Any], request_id: str) -> requests.Response:
    return session.post(gateway.url + "/v1/messages", json=body, stream=bool(body.get("stream")), timeout=30,
                        headers={**ANTHROPIC_HEADERS, "X-Request-ID": request_id})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_defaults_answer_identical_tool_free_requests_from_the_cache(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, workspace: Path,
        stream: bool) -> None:
    gateway = start(make_gateway, workspace, "server")
    body = message_body(f"Say hello ({uuid.uuid4()}).", stream=stream)
    with requests.Session() as session:  # one keep-alive connection: one worker's in-process cache
        first = post(session, gateway, body, "req_first")
        first_text = read_sse(first).text() if stream else first.json()["content"][0]["text"]
        second = post(session, gateway, body, "req_second")
        second_read = read_sse(second) if stream else None

    assert first.status_code == second.status_code == 200
    assert len(mocked_upstream.message_requests()) == 1
    offered = {tool["name"] for tool in mocked_upstream.message_requests()[0].body["tools"]}
    assert "workspace_list" in offered  # server mode: Lynkr's tools went upstream
    assert second.headers["x-lynkr-cache"] == "hit"
    summary = requests.get(gateway.url + "/metrics/observability", timeout=10).json()
    savings = summary["cost_savings"]
    assert (savings["cache_hits"], savings["cache_misses"]) == (1, 1), savings
    if second_read is not None:
        assert second_read.types[0] == "message_start"
        assert second_read.types[-1] == "message_stop"
        assert second_read.text() == first_text
    else:
        assert second.json()["content"][0]["text"] == first_text
        assert second.json()["usage"]["cache_read_input_tokens"] > 0


def _events_without_stop() -> list[dict[str, Any]]:
    return ev.text_events(["Half an ans"])[:-2]


STREAM_FAULTS: dict[str, Callable[[], StreamReply]] = {
    "silent_eof": lambda: StreamReply(events=_events_without_stop()),
    "error_frame": lambda: StreamReply(events=[*_events_without_stop(), {
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]),
    "reset": lambda: StreamReply(events=_events_without_stop(), die=True),
}


def _assert_ended_in_error(read: SSERead) -> dict[str, Any]:
    assert read.types[0] == "message_start"
    assert read.types[-1] == "error", read.types
    assert "message_stop" not in read.types
    assert "message_delta" not in read.types
    return read.events[-1]["error"]


@pytest.mark.parametrize("fault", sorted(STREAM_FAULTS))
@pytest.mark.parametrize("mode", MODES)
def test_a_broken_stream_ends_in_an_error_event(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, workspace: Path,
        mode: str, fault: str) -> None:
    gateway = start(make_gateway, workspace, mode)
    mocked_upstream.script(STREAM_FAULTS[fault]())
    with requests.Session() as session:
        response = post(session, gateway, message_body("Say hello.", stream=True), f"req_{fault}_{mode}")
        read = read_sse(response)

    assert response.status_code == 200
    error = _assert_ended_in_error(read)
    assert error["type"] == ("overloaded_error" if fault == "error_frame" else "api_error")
    assert "Half an ans" in read.text()
    [(status, error_type)] = usage_rows(gateway, f"req_{fault}_{mode}")
    assert (status, error_type) == ((529, "overloaded_error") if fault == "error_frame" else (502, "api_error"))


@pytest.mark.parametrize("mode", MODES)
def test_a_json_body_cut_after_its_headers_is_a_mapped_error(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, workspace: Path,
        mode: str) -> None:
    gateway = start(make_gateway, workspace, mode, API_RETRY_MAX_RETRIES="0")
    mocked_upstream.script(JsonReply(body=ev.message([ev.text_block("cut short")]), cut_after=40))
    with requests.Session() as session:
        response = post(session, gateway, message_body("Say hello."), f"req_cut_{mode}")

    assert response.status_code == 502
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "api_error"
    assert usage_rows(gateway, f"req_cut_{mode}") == [(502, "api_error")]


def _tool_then(fault: Any) -> Callable[[Any], Any]:
    """A model that lists the workspace (a server tool), then answers step 2 with ``fault``."""
    steps = iter([None, fault])

    def respond(request: Any) -> Any:
        behaviour = next(steps)
        if behaviour is not None:
            return behaviour
        call = ev.tool_use_block("workspace_list", {"path": "."})
        if request.body.get("stream"):
            return StreamReply(events=ev.tool_use_events("workspace_list", {"path": "."}, tool_id=call["id"]))
        return JsonReply(body=ev.message([call], stop_reason="tool_use"))

    return respond


def test_an_agent_stream_failing_after_a_server_tool_ends_in_an_error_event(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, workspace: Path) -> None:
    gateway = start(make_gateway, workspace, "server")
    mocked_upstream.responder = _tool_then(StreamReply(events=_events_without_stop(), die=True))
    with requests.Session() as session:
        read = read_sse(post(session, gateway, message_body("List the files.", stream=True), "req_agent_sse"))

    _assert_ended_in_error(read)
    assert "workspace_list" in read.text()  # the progress line of the tool that ran
    assert "[Lynkr" not in read.text()
    assert len(mocked_upstream.message_requests()) == 2
    assert usage_rows(gateway, "req_agent_sse") == [(502, "api_error")]


def test_an_agent_json_turn_failing_after_a_server_tool_is_an_http_error(
        make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream, workspace: Path) -> None:
    gateway = start(make_gateway, workspace, "server", API_RETRY_MAX_RETRIES="0")
    mocked_upstream.responder = _tool_then(JsonReply(body=ev.message([ev.text_block("x" * 200)]), cut_after=30))
    started = time.monotonic()
    with requests.Session() as session:
        response = post(session, gateway, message_body("List the files."), "req_agent_json")

    assert time.monotonic() - started < 20
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    assert len(mocked_upstream.message_requests()) == 2
    assert usage_rows(gateway, "req_agent_json") == [(502, "api_error")]
