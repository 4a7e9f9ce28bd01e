"""The dashboard in a real browser (Debian's headless Chromium) against a real ``lynkr serve``.

One gateway with an admin key in front of the fake Databricks upstream: scripted traffic
(plain and streamed answers, a session, an upstream error), then the browser signs in with the
admin key, checks that every number on the overview equals ``/metrics/observability``, reads the
session's transcript, creates a key that then works for ``/v1/messages``, sees that key's
limited view, and revokes it, after which the key is refused. No page may log a console error;
a screenshot of each page is saved under ``tests/artifacts/``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.browser import ConsoleErrors, chromium, screenshot
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, message_body, wait_until
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream, JsonReply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_KEY = "sk-e2e-dashboard-admin-0123456789"
SESSION = "sess-dashboard-e2e-1"
TASK_TITLE = "Check the dashboard"
REVOKE_DEADLINE_S = 8.0
# What each [data-metric] cell shows, as the JSON path into /metrics/observability.
METRICS = ("latency.count", "latency.p50_ms", "latency.p95_ms", "latency.p99_ms", "latency.mean_ms",
           "requests.errors", "tokens.input", "tokens.output", "cost.total_usd",
           "cost_savings.cache_hits", "cost_savings.cache_misses", "cost_savings.total_usd",
           "fallback.attempts_total", "fallback.successes_total", "fallback.failures_total")


def send(gateway: Gateway, key: str, text: str, history: list[dict[str, Any]] | None = None,
         **extra: Any) -> requests.Response:
    """POST /v1/messages in the test's session: ``history`` and then ``text`` as the user's turn."""
    headers = {**ANTHROPIC_HEADERS, "x-api-key": key, "x-session-id": SESSION}
    messages = [*(history or []), {"role": "user", "content": text}]
    return requests.post(gateway.url + "/v1/messages", json=message_body(text, messages=messages, **extra),
                         headers=headers, timeout=30)


def scripted_traffic(gateway: Gateway, upstream: FakeAnthropicUpstream) -> int:
    """One conversation of plain and streamed turns, a repeated first turn (a prompt-cache hit) and a
    turn the upstream fails; how many requests were sent."""
    history: list[dict[str, Any]] = []
    for i in range(4):
        answer = send(gateway, ADMIN_KEY, f"Question {i}", history)
        assert answer.status_code == 200
        history += [{"role": "user", "content": f"Question {i}"},
                     {"role": "assistant", "content": answer.json()["content"]}]
    assert send(gateway, ADMIN_KEY, "Question 0").status_code == 200  # a repeat: the prompt cache may answer
    streamed = send(gateway, ADMIN_KEY, "Stream it", history, stream=True)
    assert streamed.status_code == 200
    assert "message_stop" in streamed.text
    history.append({"role": "user", "content": "Stream it"})
    history.append({"role": "assistant", "content": "Streamed."})
    # The model calls one of the gateway's own tools, which runs it and asks the model again.
    upstream.script(JsonReply(ev.message([ev.tool_use_block("workspace_task_create", {"title": TASK_TITLE},
                                                            "toolu_dashboard_1")], stop_reason="tool_use")))
    tasked = send(gateway, ADMIN_KEY, "Record a task", history)
    assert tasked.status_code == 200
    history += [{"role": "user", "content": "Record a task"},
                {"role": "assistant", "content": tasked.json()["content"]}]
    upstream.script(ErrorReply(status=500))
    assert send(gateway, ADMIN_KEY, "This one fails", history).status_code >= 500
    return 8


def usage_rows(gateway: Gateway) -> int:
    with sqlite3.connect(gateway.workdir / "lynkr.db") as db:
        return db.execute("SELECT COUNT(*) FROM client_requests").fetchone()[0]


def metric(summary: dict[str, Any], path: str) -> Any:
    value: Any = summary
    for part in path.split("."):
        value = value[part]
    return value


def number(text: str) -> float | None:
    """A shown number without its unit and thousands separators (None for "—")."""
    cleaned = text.replace("$", "").replace(",", "").replace("ms", "").replace("%", "").strip()
    return None if cleaned == "—" else float(cleaned)


def test_dashboard_pages_in_chromium(make_gateway: Callable[..., Gateway], mocked_upstream: FakeAnthropicUpstream,
                                     tmp_path: Path) -> None:
    gateway = make_gateway(LYNKR_ADMIN_KEYS=ADMIN_KEY, PROMPT_CACHE_ENABLED="true", API_RETRY_MAX_RETRIES=0,
                           FALLBACK_ENABLED="false", BUDGET_KEY_DAILY_TOKENS=100_000, WORKSPACE_ROOT=tmp_path)
    sent = scripted_traffic(gateway, mocked_upstream)
    assert wait_until(lambda: usage_rows(gateway) == sent, timeout=10, interval=0.1), \
        f"{usage_rows(gateway)} usage rows of {sent} written:\n{gateway.log_text()[-3000:]}"
    console = ConsoleErrors()
    with chromium() as browser:
        page = console.attach(browser.new_context(viewport={"width": 1280, "height": 900}).new_page())

        page.goto(gateway.url + "/dashboard/")
        assert page.url.endswith("/dashboard/signin")
        screenshot(page, "dashboard-signin")
        page.fill("#key", ADMIN_KEY)
        page.click("button[type=submit]")
        page.wait_for_url(gateway.url + "/dashboard/")

        shown = {cell.get_attribute("data-metric"): cell.inner_text()
                 for cell in page.query_selector_all("[data-metric]")}
        summary = requests.get(gateway.url + "/metrics/observability", headers={"x-api-key": ADMIN_KEY},
                               timeout=10).json()
        for path in METRICS:
            assert number(shown[path]) == pytest.approx(metric(summary, path)), path
        for reason, count in summary["routing"]["by_reason"].items():
            assert number(shown[f"routing.by_reason.{reason}"]) == count
        assert summary["latency"]["count"] == sent
        assert page.inner_text("[data-breaker=databricks]") == "closed"
        assert "Daily tokens" in page.inner_text("#budgets")
        usage = page.inner_text("#usage")
        assert "databricks" in usage
        assert "LYNKR_ADMIN_KEYS #1" in usage
        screenshot(page, "dashboard-overview")

        page.click("nav >> text=Sessions")
        page.wait_for_url(gateway.url + "/dashboard/sessions")
        assert SESSION in page.inner_text("#sessions")
        screenshot(page, "dashboard-sessions")

        page.click(f"text={SESSION}")
        stored = requests.get(f"{gateway.url}/v1/sessions/{SESSION}", headers={"x-api-key": ADMIN_KEY},
                              timeout=10).json()
        assert page.inner_text("#turn-count") == str(len(stored["turns"]))
        turns = page.inner_text("ol.turns")
        assert all(f"Question {i}" in turns for i in range(4))
        assert "Stream it" in turns
        tools = page.inner_text("#server-tools")
        assert "workspace_task_create" in tools
        assert TASK_TITLE in tools
        assert len(page.query_selector_all("#session-requests tbody tr")) == sent
        screenshot(page, "dashboard-session")

        page.click("nav >> text=Keys")
        page.fill("#name", "browser-made")
        page.click("form.row button[type=submit]")
        new_key = page.inner_text("#new-key").strip()
        assert new_key.startswith("sk-lynkr-")
        screenshot(page, "dashboard-keys")
        assert send(gateway, new_key, "From the new key").status_code == 200

        limited = console.attach(browser.new_context().new_page())
        limited.goto(gateway.url + "/dashboard/signin")
        limited.fill("#key", new_key)
        limited.click("button[type=submit]")
        limited.wait_for_url(gateway.url + "/dashboard/sessions")
        assert limited.context.request.get(gateway.url + "/dashboard/keys").status == 403
        assert limited.context.request.get(gateway.url + "/dashboard/", max_redirects=0).status == 302

        page.click("tr[data-name=browser-made] button.danger")
        page.wait_for_url(gateway.url + "/dashboard/keys")
        assert "revoked" in page.inner_text("tr[data-name=browser-made]")
        assert wait_until(lambda: send(gateway, new_key, "After revoking").status_code == 401,
                          timeout=REVOKE_DEADLINE_S, interval=0.25)
        assert send(gateway, ADMIN_KEY, "The admin key still works").status_code == 200
    assert console.errors == []
