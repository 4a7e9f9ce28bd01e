"""/v1/models and /v1/models/{id}: what this gateway serves, paged as Anthropic pages it."""

from __future__ import annotations

from typing import Any

import pytest

ALIASES = "haiku=databricks-claude-haiku-4-5,opus=databricks-claude-opus-4-5,claude-3-7-sonnet=databricks-claude-3-7"


def listing(client: Any, query: str = "") -> dict[str, Any]:
    response = client.get("/v1/models" + query)
    assert response.status_code == 200
    return response.get_json()


def test_models_lists_the_claude_names_it_maps_then_the_upstream_models_and_aliases(make_app: Any) -> None:
    client = make_app(model_aliases=ALIASES, fallback_enabled=False).test_client()
    body = listing(client)
    assert [(m["id"], m["display_name"]) for m in body["data"]] == [
        ("claude-opus-4-5", "claude-opus-4-5 via databricks (databricks-claude-opus-4-5)"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5 via databricks (databricks-claude-sonnet-4-5)"),
        ("claude-haiku-4-5", "claude-haiku-4-5 via databricks (databricks-claude-haiku-4-5)"),
        ("claude-3-7-sonnet", "claude-3-7-sonnet via databricks (databricks-claude-3-7)"),
        ("databricks-claude-opus-4-5", "databricks-claude-opus-4-5 on databricks"),
        ("databricks-claude-sonnet-4-5", "databricks-claude-sonnet-4-5 on databricks"),
        ("databricks-claude-haiku-4-5", "databricks-claude-haiku-4-5 on databricks"),
        ("databricks-claude-3-7", "databricks-claude-3-7 on databricks"),
    ]
    assert all(m["type"] == "model" and m["created_at"] == "2025-01-01T00:00:00Z" for m in body["data"])
    assert (body["has_more"], body["first_id"], body["last_id"]) == (False, "claude-opus-4-5", "databricks-claude-3-7")


def test_models_include_the_fallback_provider_when_it_is_configured(make_app: Any) -> None:
    client = make_app(model_provider="openai", openai_api_key="sk-openai-test-1234", openai_model="gpt-4o",
                      fallback_enabled=True, fallback_provider="databricks").test_client()
    ids = [m["id"] for m in listing(client)["data"]]
    assert ids == ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o",
                   "databricks-claude-sonnet-4-5"]


def test_models_page_with_limit_after_id_and_before_id(make_app: Any) -> None:
    client = make_app(model_aliases=ALIASES, fallback_enabled=False).test_client()
    first = listing(client, "?limit=3")
    assert [m["id"] for m in first["data"]] == ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"]
    assert (first["has_more"], first["last_id"]) == (True, "claude-haiku-4-5")
    second = listing(client, "?limit=3&after_id=claude-haiku-4-5")
    assert [m["id"] for m in second["data"]] == ["claude-3-7-sonnet", "databricks-claude-opus-4-5",
                                                 "databricks-claude-sonnet-4-5"]
    back = listing(client, "?limit=2&before_id=databricks-claude-opus-4-5")
    assert [m["id"] for m in back["data"]] == ["claude-haiku-4-5", "claude-3-7-sonnet"]
    assert back["has_more"] is True


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1"])
def test_a_bad_limit_is_a_400(client: Any, limit: str) -> None:
    response = client.get(f"/v1/models?limit={limit}")
    assert response.status_code == 400
    assert response.get_json()["error"] == {"type": "invalid_request_error",
                                            "message": "limit: must be an integer from 1 to 1000"}


def test_get_model_answers_listed_and_claude_names_and_404s_the_rest(make_app: Any) -> None:
    client = make_app(fallback_enabled=False).test_client()
    listed = client.get("/v1/models/databricks-claude-sonnet-4-5")
    assert listed.get_json() == {"type": "model", "id": "databricks-claude-sonnet-4-5",
                                 "display_name": "databricks-claude-sonnet-4-5 on databricks",
                                 "created_at": "2025-01-01T00:00:00Z"}
    dated = client.get("/v1/models/claude-sonnet-4-5-20250929").get_json()
    assert dated["display_name"] == "claude-sonnet-4-5-20250929 via databricks (databricks-claude-sonnet-4-5)"
    missing = client.get("/v1/models/gpt-nothing")
    assert missing.status_code == 404
    body = missing.get_json()
    assert body["error"] == {"type": "not_found_error",
                             "message": "model: gpt-nothing is not served by this gateway "
                                        "(GET /v1/models lists what is)."}
    assert body["request_id"] == missing.headers["request-id"]


def test_models_need_the_key_when_keys_are_set(make_app: Any) -> None:
    client = make_app(api_keys=("sk-models-key-000001",)).test_client()
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models/claude-sonnet-4-5").status_code == 401
    assert client.get("/v1/models", headers={"x-api-key": "sk-models-key-000001"}).status_code == 200
