"""Stored sessions are readable by the key that created them, and by admin keys."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request

ALICE, BOB, ADMIN = "sk-alice-000000000001", "sk-bob-00000000000002", "sk-admin-000000000003"


@pytest.fixture
def keyed(make_app: Any) -> Any:
    app = make_app(api_keys=(ALICE, BOB), admin_keys=(ADMIN,))
    client = app.test_client()
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        for key, session in ((ALICE, "s-alice"), (BOB, "s-bob"), (BOB, "s-alice")):
            assert client.post("/v1/messages", json=make_request(), headers={
                "x-api-key": key, "x-session-id": session}).status_code == 200
    app.extensions["lynkr"].recorder.flush()
    return client


def ids(client: Any, key: str) -> list[str]:
    return sorted(s["id"] for s in client.get("/v1/sessions", headers={"x-api-key": key}).get_json()["data"])


def test_each_key_lists_its_own_sessions_and_admin_lists_all(keyed: Any) -> None:
    assert ids(keyed, ALICE) == ["s-alice"]
    assert ids(keyed, BOB) == ["s-bob"]
    assert ids(keyed, ADMIN) == ["s-alice", "s-bob"]


def test_another_key_cannot_read_or_write_a_session(keyed: Any) -> None:
    response = keyed.get("/v1/sessions/s-alice", headers={"x-api-key": BOB})
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "not_found_error"
    session = keyed.get("/v1/sessions/s-alice", headers={"x-api-key": ALICE}).get_json()
    assert [t["role"] for t in session["turns"]] == ["user", "assistant"]
    assert keyed.get("/v1/sessions/s-alice", headers={"x-api-key": ADMIN}).status_code == 200


def test_sessions_need_a_key(keyed: Any) -> None:
    assert keyed.get("/v1/sessions").status_code == 401
