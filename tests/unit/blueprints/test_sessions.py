"""Stored sessions over HTTP: newest first with turn counts, one session's newest branch, scoped to the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from flask import Flask

from app.accounting.auth import key_id
from app.storage.db import db
from app.storage.models import Session, Turn

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER, OTHER, ADMIN = "sk-owner", "sk-other", "sk-admin"


@pytest.fixture
def built(make_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        app = make_app(**config)
        apps.append(app)
        with db.connection_context():
            if Session.select().exists():  # a second app of the test shares its database
                return app
            store("s-old", key_id(OWNER), T0, ["hi"])
            store("s-new", key_id(OWNER), T0 + timedelta(hours=1), ["a", "b", "c"])
            store("s-theirs", key_id(OTHER), T0 + timedelta(hours=2), [])
        return app

    yield build
    for app in apps:
        app.extensions["lynkr"].recorder.flush()


def store(session_id: str, owner: str, at: datetime, texts: list[str]) -> None:
    Session.create(id=session_id, owner=owner, created_at=at, updated_at=at)
    parent = None
    for position, text in enumerate(texts):
        role = "user" if position % 2 == 0 else "assistant"
        parent = Turn.create(session=session_id, parent=parent, position=position, role=role,
                             content=orjson.dumps({"role": role, "content": text}).decode(),
                             chain_hash=f"{session_id}-{position}", created_at=at)


def ids(response: Any) -> list[str]:
    return [row["id"] for row in response.get_json()["data"]]


def test_a_key_lists_its_own_sessions_newest_first_with_turn_counts(built: Callable[..., Flask]) -> None:
    client = built(api_keys=(OWNER, OTHER)).test_client()
    response = client.get("/v1/sessions", headers={"x-api-key": OWNER})
    assert response.status_code == 200
    assert response.get_json() == {"has_more": False, "data": [
        {"id": "s-new", "created_at": "2026-12-01T13:00:00+00:00", "updated_at": "2026-12-01T13:00:00+00:00",
         "turns": 3},
        {"id": "s-old", "created_at": "2026-12-01T12:00:00+00:00", "updated_at": "2026-12-01T12:00:00+00:00",
         "turns": 1}]}
    assert ids(client.get("/v1/sessions", headers={"x-api-key": OTHER})) == ["s-theirs"]


def test_limit_and_has_more(built: Callable[..., Flask]) -> None:
    client = built().test_client()
    limited = client.get("/v1/sessions?limit=2").get_json()
    assert ([row["id"] for row in limited["data"]], limited["has_more"]) == (["s-theirs", "s-new"], True)
    assert ids(client.get("/v1/sessions?limit=0")) == ["s-theirs", "s-new", "s-old"]
    assert ids(client.get("/v1/sessions?limit=nonsense")) == ["s-theirs", "s-new", "s-old"]


def test_admins_and_open_gateways_read_everything(built: Callable[..., Flask]) -> None:
    admin = built(api_keys=(OWNER,), admin_keys=(ADMIN,)).test_client()
    assert ids(admin.get("/v1/sessions", headers={"x-api-key": ADMIN})) == ["s-theirs", "s-new", "s-old"]
    assert admin.get("/v1/sessions/s-theirs", headers={"x-api-key": ADMIN}).status_code == 200
    assert ids(built().test_client().get("/v1/sessions")) == ["s-theirs", "s-new", "s-old"]


def test_one_session_is_its_turns_in_order(built: Callable[..., Flask]) -> None:
    client = built(api_keys=(OWNER, OTHER)).test_client()
    body = client.get("/v1/sessions/s-new", headers={"x-api-key": OWNER}).get_json()
    assert (body["id"], body["created_at"]) == ("s-new", "2026-12-01T13:00:00+00:00")
    assert [(t["position"], t["role"], t["content"], t["source"]) for t in body["turns"]] == [
        (0, "user", "a", "client"), (1, "assistant", "b", "client"), (2, "user", "c", "client")]


@pytest.mark.parametrize(("session_id", "key"), [("s-theirs", OWNER), ("missing", OWNER)])
def test_another_keys_session_is_not_found_like_a_missing_one(built: Callable[..., Flask], session_id: str,
                                                               key: str) -> None:
    response = built(api_keys=(OWNER, OTHER)).test_client().get(f"/v1/sessions/{session_id}",
                                                                headers={"x-api-key": key})
    assert response.status_code == 404
    assert response.get_json()["error"] == {"type": "not_found_error", "message": f"No session {session_id!r}."}


def test_without_a_key_nothing_is_listed(built: Callable[..., Flask]) -> None:
    response = built(api_keys=(OWNER,)).test_client().get("/v1/sessions")
    assert (response.status_code, response.get_json()["error"]["type"]) == (401, "authentication_error")
