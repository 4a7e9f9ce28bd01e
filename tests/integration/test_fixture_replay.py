"""Every recorded Claude Code request is accepted by hosts that reject what they do not know.

The strict fakes answer 400 (as the real hosts do) on anything their profile lacks: system
turns inside messages, adaptive thinking, unknown top-level fields, deferred tools,
``tool_reference`` blocks, unknown betas, too many output tokens, forwarded client headers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from app.anthropic.events import validate_stream
from app.anthropic.sse import SSEDecoder
from app.providers.capabilities import CORE_FIELDS
from tests.conftest import AZURE_URL, DATABRICKS_URL, FIXTURES, load_fixture
from tests.integration.test_messages_anthropic import make_message, make_stream_events, sse_body

RECORDED = sorted(p.name for p in FIXTURES.glob("*-request*.json"))
HOSTS = {
    "databricks": (DATABRICKS_URL, CORE_FIELDS, {"interleaved-thinking-2025-05-14",
                                                 "fine-grained-tool-streaming-2025-05-14"}),
    "azure-anthropic": (AZURE_URL, CORE_FIELDS | {"context_management"},
                        {"interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
                         "context-management-2025-06-27", "token-efficient-tools-2025-02-19"}),
}
FORBIDDEN_HEADERS = ("x-stainless-", "x-app", "anthropic-dangerous-direct-browser-access", "x-claude-code")


def rejection(body: dict[str, Any], headers: Any, fields: set[str], betas: set[str]) -> str | None:
    """Why a strict host would refuse this request, or None."""
    if set(body) - fields:
        return f"unknown fields {sorted(set(body) - fields)}"
    if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
        return "messages: roles must be user or assistant"
    thinking = body.get("thinking") or {}
    if thinking and (thinking.get("type") != "enabled" or thinking["budget_tokens"] >= body["max_tokens"]
                     or set(thinking) != {"type", "budget_tokens"}):
        return f"thinking not accepted: {thinking}"
    if body["max_tokens"] > 64000:
        return "max_tokens too large"
    if any("defer_loading" in t for t in body.get("tools", [])):
        return "tools: defer_loading not accepted"
    if "tool_reference" in json.dumps(body["messages"]):
        return "tool_reference blocks not accepted"
    if set(filter(None, (headers.get("anthropic-beta") or "").split(","))) - betas:
        return "unknown anthropic-beta"
    if any(name.lower().startswith(FORBIDDEN_HEADERS) for name in headers):
        return "client header forwarded"
    return None


def strict_host(fields: set[str], betas: set[str]) -> Any:
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        reason = rejection(body, request.headers, fields, betas)
        if reason:
            return 400, {}, json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                                  "message": reason}})
        if body.get("stream"):
            return 200, {"content-type": "text/event-stream"}, sse_body(make_stream_events()).decode()
        return 200, {}, json.dumps(make_message())

    return answer


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize("name", RECORDED)
def test_recorded_request_is_accepted_after_translation(make_app: Any, host: str, name: str) -> None:
    url, fields, betas = HOSTS[host]
    recorded = load_fixture(name)
    client: FlaskClient = make_app(model_provider=host).test_client()
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in ("host", "content-length")}
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, url, callback=strict_host(fields, betas))
        response = client.post(f"{recorded['path']}?{recorded['query']}", json=recorded["body"], headers=headers)
        data = response.get_data()
    assert response.status_code == 200, data
    if recorded["body"].get("stream"):
        events = [e.json() for e in SSEDecoder().feed(data)]
        validate_stream(events)
        assert events[-1]["type"] == "message_stop", events[-1]
    else:
        assert response.get_json()["model"] == recorded["body"]["model"]


def test_every_recorded_variant_is_replayed() -> None:
    assert len(RECORDED) >= 16
