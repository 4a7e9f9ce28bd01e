"""The dashboard through the Flask test client: sign-in, CSRF, admin-only pages, open mode, keys,
transcripts. (The same pages in a real browser: tests/e2e/test_dashboard_browser.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounting.auth import key_id
from app.accounting.keys import CACHE_TTL_S, KeyStore, create_key, hash_key
from app.blueprints.dashboard import SECURITY_HEADERS
from app.factory import create_app
from app.resilience.drain import DrainFlag
from app.resilience.retry import InProcessStore
from app.storage.db import db
from app.storage.models import ApiKey, ClientRequest, ToolExecution
from app.storage.transcripts import record_exchange
from app.web.signin import CSRF_COOKIE, KEY_COOKIE
from tests.fakes.clock import FakeClock
from tests.integration.test_postgres import pg_app  # noqa: F401 - the PostgreSQL app fixture

ADMIN, CLIENT = "sk-dash-admin-000000001", "sk-dash-client-00000002"
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def keyed(make_app: Any) -> Flask:
    app = make_app(api_keys=(CLIENT,), admin_keys=(ADMIN,))
    with app.app_context(), db.connection_context():
        record_exchange("s-admin", key_id(ADMIN), [{"role": "user", "content": "List the files"}],
                        {"content": [{"type": "tool_use", "id": "toolu_1", "name": "workspace_list",
                                      "input": {"path": "."}}]})
        record_exchange("s-client", key_id(CLIENT), [{"role": "user", "content": "Hi from the client"}],
                        {"content": [{"type": "text", "text": "Hello!"}]})
        ToolExecution.create(session_id="s-admin", owner=key_id(ADMIN), tool_use_id="toolu_1", name="workspace_list",
                             input=json.dumps({"path": "."}), result=json.dumps("README.md\nsetup.cfg"),
                             is_error=False, duration_ms=3.0)
        for i, (session, key) in enumerate((("s-admin", ADMIN), ("s-admin", ADMIN), ("s-client", CLIENT))):
            ClientRequest.create(request_id=f"req_{i}", session_id=session, api_key=key_id(key), path="/v1/messages",
                                 provider="databricks", model="claude-sonnet-4-5", status=200, input_tokens=100,
                                 output_tokens=20, cost_usd=0.0015)
    return app


def csrf(client: FlaskClient) -> str:
    client.get("/dashboard/signin", environ_base=LOOPBACK)
    cookie = client.get_cookie(CSRF_COOKIE, path="/dashboard")
    assert cookie is not None
    return cookie.value


def signed_in(app: Flask, key: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/dashboard/signin", data={"key": key, "csrf_token": csrf(client)})
    assert response.status_code == 302
    return client


def test_pages_ask_to_sign_in_first(keyed: Flask) -> None:
    for path in ("/dashboard/", "/dashboard/sessions", "/dashboard/keys", "/dashboard/sessions/s-admin"):
        response = keyed.test_client().get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "/dashboard/signin"


def test_a_wrong_key_is_refused_and_an_admin_key_signs_in(keyed: Flask) -> None:
    client = keyed.test_client()
    token = csrf(client)
    refused = client.post("/dashboard/signin", data={"key": "sk-wrong", "csrf_token": token})
    assert refused.status_code == 401
    assert b"That key is not valid." in refused.data
    response = client.post("/dashboard/signin", data={"key": ADMIN, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(KEY_COOKIE))
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Strict", "Path=/dashboard"))
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert b"Overview" in page.data
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_a_form_without_the_csrf_token_is_refused(keyed: Flask) -> None:
    client = keyed.test_client()
    csrf(client)
    assert client.post("/dashboard/signin", data={"key": ADMIN}).status_code == 403
    admin = signed_in(keyed, ADMIN)
    assert admin.post("/dashboard/keys", data={"name": "x", "csrf_token": "y" * 43}).status_code == 403
    with keyed.app_context(), db.connection_context():
        assert ApiKey.select().count() == 0


def test_a_client_key_sees_only_its_own_sessions(keyed: Flask) -> None:
    client = signed_in(keyed, CLIENT)
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/sessions"
    assert client.get("/dashboard/keys").status_code == 403
    listing = client.get("/dashboard/sessions").get_data(as_text=True)
    assert "s-client" in listing
    assert "s-admin" not in listing
    assert client.get("/dashboard/sessions/s-admin").status_code == 404
    assert client.get("/dashboard/sessions/s-client").status_code == 200


def test_the_transcript_shows_turns_server_tools_and_cost(keyed: Flask) -> None:
    page = signed_in(keyed, ADMIN).get("/dashboard/sessions/s-admin").get_data(as_text=True)
    assert "List the files" in page
    assert "ran on the gateway" in page
    assert "README.md\nsetup.cfg" in page
    assert '<div class="big" id="session-cost">$0.003000</div>' in page
    assert '<div class="big" id="turn-count">2</div>' in page


def test_keys_are_created_shown_once_and_revoked(keyed: Flask) -> None:
    admin = signed_in(keyed, ADMIN)
    token = csrf(admin)
    created = admin.post("/dashboard/keys", data={"name": "laptop", "admin": "on", "csrf_token": token})
    assert created.status_code == 200
    key = created.get_data(as_text=True).split('id="new-key">', 1)[1].split("<", 1)[0]
    with keyed.app_context(), db.connection_context():
        row = ApiKey.get(ApiKey.name == "laptop")
        assert row.key_hash == hash_key(key)
        assert row.admin
    assert key not in admin.get("/dashboard/keys").get_data(as_text=True)
    again = admin.post("/dashboard/keys", data={"name": "laptop", "csrf_token": token})
    assert again.status_code == 400
    assert "already named" in again.get_data(as_text=True)
    revoked = admin.post(f"/dashboard/keys/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.headers["Location"] == "/dashboard/keys"
    with keyed.app_context(), db.connection_context():
        assert ApiKey.get(ApiKey.name == "laptop").revoked_at is not None


def test_the_overview_shows_usage_by_provider_model_and_key(keyed: Flask) -> None:
    page = signed_in(keyed, ADMIN).get("/dashboard/?window=1h").get_data(as_text=True)
    assert ("<tr><td>databricks</td><td>claude-sonnet-4-5</td><td>LYNKR_ADMIN_KEYS #1</td>"
            '<td class="num">2</td>') in page
    assert "LYNKR_API_KEYS #1" in page
    assert 'data-breaker="databricks">closed<' in page


def test_without_keys_loopback_clients_are_admins_and_others_are_refused(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    assert client.get("/dashboard", environ_base=LOOPBACK).headers["Location"].endswith("/dashboard/")
    assert client.get("/dashboard/", environ_base=LOOPBACK).status_code == 200
    assert client.get("/dashboard/keys", environ_base=LOOPBACK).status_code == 200
    assert client.get("/dashboard/signin", environ_base=LOOPBACK).headers["Location"] == "/dashboard/"
    remote = client.get("/dashboard/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403
    assert b"loopback" in remote.data


def test_the_first_key_made_in_open_mode_is_an_admin_key_and_closes_open_mode(make_config: Any) -> None:
    clock = FakeClock()
    app = create_app(make_config(), drain=DrainFlag(), breaker_store=InProcessStore(),
                     key_store=KeyStore(clock=clock))
    client = app.test_client()
    token = csrf(client)
    created = client.post("/dashboard/keys", data={"name": "first", "csrf_token": token}, environ_base=LOOPBACK)
    assert created.status_code == 200
    key = created.get_data(as_text=True).split('id="new-key">', 1)[1].split("<", 1)[0]
    with app.app_context(), db.connection_context():
        assert ApiKey.get(ApiKey.name == "first").admin
    clock.advance(CACHE_TTL_S)  # the gateway sees a stored key within the key cache's TTL
    assert client.get("/dashboard/", environ_base=LOOPBACK).headers["Location"] == "/dashboard/signin"
    assert signed_in(app, key).get("/dashboard/keys").status_code == 200


def test_an_unknown_session_is_a_page_not_json(keyed: Flask) -> None:
    response = signed_in(keyed, ADMIN).get("/dashboard/sessions/nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No session &#39;nope&#39;." in response.get_data(as_text=True)


def test_with_metrics_off_the_overview_says_so(make_app: Any) -> None:
    page = make_app(metrics_enabled=False).test_client().get("/dashboard/", environ_base=LOOPBACK)
    assert page.status_code == 200
    assert "METRICS_ENABLED is off" in page.get_data(as_text=True)


@pytest.mark.postgres
def test_the_pages_read_postgresql(pg_app: Flask) -> None:  # noqa: F811 - pytest passes the imported fixture
    with pg_app.app_context(), db.connection_context():
        record_exchange("pg-dash", None, [{"role": "user", "content": "On PostgreSQL"}], None)
        ClientRequest.create(request_id="pg-dash-1", session_id="pg-dash", path="/v1/messages", provider="databricks",
                             model="claude-sonnet-4-5", status=500, input_tokens=7, output_tokens=3, cost_usd=0.5)
    client = pg_app.test_client()
    overview = client.get("/dashboard/?window=1h", environ_base=LOOPBACK).get_data(as_text=True)
    assert ('<tr><td>databricks</td><td>claude-sonnet-4-5</td><td>(no key)</td><td class="num">1</td>'
            '\n          <td class="num">7</td><td class="num">3</td><td class="num">$0.500000</td></tr>') in overview
    assert "1 requests, 1 errors</title>" in overview
    sessions = client.get("/dashboard/sessions", environ_base=LOOPBACK).get_data(as_text=True)
    assert '<td class="num">1</td>\n        <td class="num">1</td>\n        <td class="num">$0.5000</td>' in sessions
    transcript = client.get("/dashboard/sessions/pg-dash", environ_base=LOOPBACK).get_data(as_text=True)
    assert "On PostgreSQL" in transcript


# --- what every page shares: headers, cookies, the stylesheet, the redirects ------------------------------------


def test_every_kind_of_response_carries_the_security_headers(keyed: Flask) -> None:
    client = keyed.test_client()
    admin = signed_in(keyed, ADMIN)
    responses = {
        "form": client.get("/dashboard/signin"),
        "redirect": client.get("/dashboard/"),
        "page": admin.get("/dashboard/keys"),
        "denied": signed_in(keyed, CLIENT).get("/dashboard/keys"),
        "not found": admin.get("/dashboard/sessions/nope"),
        "stylesheet": client.get("/dashboard/static/dashboard.css"),
    }
    assert {name: response.status_code for name, response in responses.items()} == {
        "form": 200, "redirect": 302, "page": 200, "denied": 403, "not found": 404, "stylesheet": 200}
    for response in responses.values():
        assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert responses["stylesheet"].mimetype == "text/css"
    assert responses["stylesheet"].get_data(as_text=True).strip()
    for response in responses.values():
        response.close()  # the stylesheet is streamed from its file
    assert responses["denied"].mimetype == "text/html"
    assert "This page is for admin keys." in responses["denied"].get_data(as_text=True)


def test_the_csrf_cookie_is_set_once_and_kept(keyed: Flask) -> None:
    client = keyed.test_client()
    first = client.get("/dashboard/signin")
    cookie = next(c for c in first.headers.getlist("Set-Cookie") if c.startswith(CSRF_COOKIE + "="))
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Strict", "Path=/dashboard"))
    token = client.get_cookie(CSRF_COOKIE, path="/dashboard")
    assert token is not None
    client.get("/dashboard/signin")
    again = client.get_cookie(CSRF_COOKIE, path="/dashboard")
    assert again is not None
    assert again.value == token.value


def test_a_client_key_signs_in_to_its_sessions_and_cannot_touch_keys(keyed: Flask) -> None:
    client = keyed.test_client()
    response = client.post("/dashboard/signin", data={"key": CLIENT, "csrf_token": csrf(client)})
    assert (response.status_code, response.headers["Location"]) == (302, "/dashboard/sessions")
    token = csrf(client)
    assert client.post("/dashboard/keys", data={"name": "mine", "csrf_token": token}).status_code == 403
    with keyed.app_context(), db.connection_context():
        row, _ = create_key("stored", admin=False)
    assert client.post(f"/dashboard/keys/{row.id}/revoke", data={"csrf_token": token}).status_code == 403
    with keyed.app_context(), db.connection_context():
        assert [(k.name, k.revoked_at) for k in ApiKey.select()] == [("stored", None)]


def test_signing_out_forgets_the_key(keyed: Flask) -> None:
    admin = signed_in(keyed, ADMIN)
    token = csrf(admin)
    response = admin.post("/dashboard/signout", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (302, "/dashboard/signin")
    cleared = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(KEY_COOKIE + "="))
    assert cleared.startswith(f"{KEY_COOKIE}=;")
    assert "Max-Age=0" in cleared
    assert admin.get("/dashboard/").headers["Location"] == "/dashboard/signin"


def test_a_stale_key_cookie_is_sent_to_sign_in_and_cleared(keyed: Flask) -> None:
    client = keyed.test_client()
    client.set_cookie(KEY_COOKIE, "sk-revoked-long-ago", path="/dashboard")
    response = client.get("/dashboard/sessions")
    assert (response.status_code, response.headers["Location"]) == (302, "/dashboard/signin")
    assert any(c.startswith(f"{KEY_COOKIE}=;") for c in response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(("asked", "shown"), [("1h", "1h"), ("7d", "7d"), ("forever", "24h"), (None, "24h")])
def test_the_overview_window_is_one_of_the_three_or_24h(keyed: Flask, asked: str | None, shown: str) -> None:
    path = "/dashboard/" if asked is None else f"/dashboard/?window={asked}"
    page = signed_in(keyed, ADMIN).get(path).get_data(as_text=True)
    assert f"<h2>Traffic over the last {shown}</h2>" in page
    assert f'class="on">{shown}</a>' in page


def test_a_key_without_a_name_is_refused_with_the_reason(keyed: Flask) -> None:
    admin = signed_in(keyed, ADMIN)
    token = csrf(admin)
    response = admin.post("/dashboard/keys", data={"name": "  ", "csrf_token": token})
    assert response.status_code == 400
    assert "a key needs a name" in response.get_data(as_text=True)
    with keyed.app_context(), db.connection_context():
        assert ApiKey.select().count() == 0
