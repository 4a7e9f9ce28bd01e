"""The same storage paths on a real PostgreSQL (``.ci/run`` starts one; see scripts/start-services.sh)."""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest
import responses

from app.storage.db import db
from app.storage.migrate import available, migrate
from app.storage.models import ClientRequest, Turn
from tests.conftest import DATABRICKS_URL
from tests.integration.test_messages_anthropic import make_message, make_request
from tests.unit.accounting import test_usage
from tests.unit.agent import test_splice
from tests.unit.storage import test_transcripts

pytestmark = pytest.mark.postgres
DATABASE_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")


@pytest.fixture
def pg_app(make_app: Any) -> Any:
    app = make_app(database_url=DATABASE_URL)
    try:
        with db.connection_context():
            for table in ("upstream_attempts", "client_requests", "turns", "sessions", "api_keys",
                          "usage_counters", "schema_migrations"):
                db.execute_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    except Exception as exc:  # the server must be there: a missing one is a failure, not a skip
        pytest.fail(f"PostgreSQL at {DATABASE_URL} is not reachable ({exc}); run scripts/start-services.sh")
    assert migrate(db.obj) == [version for version, _ in available()]
    assert migrate(db.obj) == []
    yield app
    app.extensions["lynkr"].recorder.flush()
    db.obj.close_all()


def test_requests_usage_and_incremental_transcripts_on_postgres(pg_app: Any) -> None:
    client = pg_app.test_client()
    history = [{"role": "user", "content": "first"}]
    with responses.RequestsMock() as mocked:
        mocked.post(DATABRICKS_URL, json=make_message())
        for turn in range(3):
            client.post("/v1/messages", json=make_request(messages=history),
                        headers={"x-session-id": "pg-session", "x-request-id": f"pg-req-{turn}"})
            history = [*history, {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
                       {"role": "user", "content": f"next {turn}"}]
    pg_app.extensions["lynkr"].recorder.flush()
    with db.connection_context():
        assert ClientRequest.select().where(ClientRequest.session_id == "pg-session").count() == 3
        assert ClientRequest.get(ClientRequest.request_id == "pg-req-2").input_tokens == 12
        assert Turn.select().where(Turn.session == "pg-session").count() == 6
    assert pg_app.test_client().get("/health/ready").get_json()["checks"]["database"]["ok"] is True


@pytest.mark.parametrize("check", [
    test_usage.check_rows_are_written_with_every_field,
    test_usage.check_a_reused_request_id_keeps_the_first_row_and_never_moves_attempts,
    functools.partial(test_transcripts.check_another_key_s_session_is_never_written, "key_b"),
    functools.partial(test_transcripts.check_another_key_s_session_is_never_written, None),
    test_transcripts.check_a_long_conversation_is_matched_across_lookups,
    test_transcripts.check_an_answer_resent_before_it_was_recorded_is_still_the_response,
    test_splice.check_every_message_with_a_stored_trace_is_replaced,
    test_splice.check_a_kept_trace_is_reused_until_it_is_stored_again,
])
def test_prepared_writes_behave_the_same_on_postgres(pg_app: Any, check: Any) -> None:
    with db.connection_context():
        check()
