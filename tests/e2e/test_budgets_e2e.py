"""Budgets, database keys and session scoping across two real gateways sharing one PostgreSQL.

Each test starts two ``lynkr serve`` instances (gunicorn, 2 workers each) on the same
``DATABASE_URL`` and the same fake Anthropic upstream, so what one instance counts, stores or
revokes must be seen by the other (and by the other worker of the same instance).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest
import requests

from app.accounting.auth import key_id
from app.accounting.budgets import estimate_hold_tokens
from app.accounting.keys import CACHE_TTL_S
from tests.e2e.conftest import REPO
from tests.e2e.helpers import Gateway, message_body, wait_until
from tests.fakes.anthropic_events import DEFAULT_USAGE
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, JsonReply

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DATABASE_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")
TABLES = ("upstream_attempts", "client_requests", "turns", "sessions", "api_keys", "usage_counters",
          "schema_migrations")
KEY_A = "sk-e2e-budget-key-a-0123456789"
KEY_B = "sk-e2e-budget-key-b-0123456789"
# Small requests so ~10-20 of them spend the budget: each holds about 28 prompt + 16 output tokens
# and really uses the fake's 12 + 6.
MAX_TOKENS = 16
REAL_USAGE = DEFAULT_USAGE["input_tokens"] + DEFAULT_USAGE["output_tokens"]
DAILY_TOKENS = 300
REVOKE_TTL_S = CACHE_TTL_S  # a key's answer expires this long after its database read


# -- database ---------------------------------------------------------------------------------------

def sql(query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the shared database (autocommit); the rows it returns, if any."""
    conn = psycopg2.connect(DATABASE_URL)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def lynkr(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` against the shared database."""
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ}
    env.update({"PYTHONPATH": str(REPO), "DATABASE_URL": DATABASE_URL, "LOG_LEVEL": "warning"})
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, f"lynkr {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def fresh_db() -> None:
    """Drop every table of the shared database and migrate it again."""
    try:
        for table in TABLES:
            sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    except psycopg2.OperationalError as exc:  # the server must be there: a failure, not a skip
        pytest.fail(f"PostgreSQL at {DATABASE_URL} is not reachable ({exc}); run scripts/start-services.sh")
    lynkr("migrate")


@pytest.fixture
def pair(fresh_db: None, mocked_upstream: FakeAnthropicUpstream,
         make_gateway: Callable[..., Gateway]) -> Callable[..., tuple[Gateway, Gateway]]:
    """Starts two gateways on the shared database and the same fake upstream."""
    def start(**env: Any) -> tuple[Gateway, Gateway]:
        settings = {"DATABASE_URL": DATABASE_URL, "WEB_CONCURRENCY": "2", "PROMPT_CACHE_ENABLED": "false",
                    **env}
        return make_gateway(**settings), make_gateway(**settings)

    return start


def wait_rows(query: str, params: tuple[Any, ...], expected: int, timeout: float = 15) -> int:
    """Poll a ``SELECT count(*)`` until it reaches ``expected`` (rows are written in the background)."""
    seen = [0]

    def reached() -> bool:
        seen[0] = sql(query, params)[0][0]
        return seen[0] >= expected

    wait_until(reached, timeout=timeout, interval=0.1)
    return seen[0]


def post(gateway: Gateway, key: str | None, **headers: str) -> requests.Response:
    """One small ``POST /v1/messages`` on a fresh connection, with ``key`` as ``x-api-key``."""
    if key is not None:
        headers["x-api-key"] = key
    return gateway.post(message_body("Say hello.", max_tokens=MAX_TOKENS), headers=headers)


# -- 1. a daily token budget, spent concurrently through both instances ------------------------------

def test_daily_token_budget_holds_across_instances_under_concurrency(
        pair: Callable[..., tuple[Gateway, Gateway]], mocked_upstream: FakeAnthropicUpstream) -> None:
    hold = sum(estimate_hold_tokens(message_body("Say hello.", max_tokens=MAX_TOKENS)))
    assert REAL_USAGE <= hold < DAILY_TOKENS // 5, "the budget must take several requests to spend"
    # A little upstream latency keeps many holds in flight at once while the budget runs out.
    mocked_upstream.responder = lambda request: JsonReply(delay=0.05)
    gateways = pair(LYNKR_API_KEYS=KEY_A, BUDGET_KEY_DAILY_TOKENS=DAILY_TOKENS, LYNKR_THREADS=16,
                    LYNKR_MAX_CONCURRENT_STREAMS=16)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda i: post(gateways[i % 2], KEY_A), range(96)))
    burst_s = time.monotonic() - started
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 402}, {r.status_code: r.text for r in responses if r.status_code not in (200, 402)}
    assert statuses[200] > 0, statuses
    assert statuses[402] > 0, statuses
    served_by = Counter(i % 2 for i, r in enumerate(responses) if r.status_code == 200)
    assert len(served_by) == 2, f"both instances must have served some requests: {served_by}"

    # Whatever the burst left, the budget is spent once sequential requests are refused too.
    extra = 0
    while post(gateways[extra % 2], KEY_A).status_code == 200:
        extra += 1
        assert extra < DAILY_TOKENS // REAL_USAGE + 2, "the budget is never enforced"
    for gateway in gateways:  # refused on both instances, every worker
        for _ in range(4):
            refused = post(gateway, KEY_A)
            assert refused.status_code == 402, refused.text
            error = refused.json()["error"]
            assert error["type"] == "billing_error"
            assert "Daily token budget" in error["message"]
            assert f"of {DAILY_TOKENS} tokens" in error["message"]

    ok = statuses[200] + extra
    sent = len(responses) + extra + 1 + 8
    kid = key_id(KEY_A)
    rows = wait_rows("SELECT count(*) FROM client_requests WHERE api_key = %s", (kid,), sent)
    assert rows == sent
    assert sql("SELECT count(*) FROM client_requests WHERE api_key = %s AND status = 200", (kid,))[0][0] == ok
    assert sql("SELECT count(*) FROM client_requests WHERE api_key = %s AND status = 402 "
               "AND error_type = 'billing_error'", (kid,))[0][0] == sent - ok
    used_rows = sql("SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_input_tokens "
                    "+ cache_creation_input_tokens), 0) FROM client_requests "
                    "WHERE api_key = %s AND status = 200", (kid,))[0][0]
    assert used_rows == ok * REAL_USAGE
    counter = sql("SELECT used FROM usage_counters WHERE scope = %s AND period = %s",
                  (f"key:{kid}:daily:tokens", datetime.now(UTC).strftime("%Y-%m-%d")))
    assert counter == [(used_rows,)], "every hold is settled to the real usage on the shared counter"
    assert DAILY_TOKENS <= used_rows <= DAILY_TOKENS + REAL_USAGE, (used_rows, statuses, extra)
    assert len(mocked_upstream.message_requests()) == ok, "a refused request never reaches the upstream"
    print(f"\nbudget: {statuses[200]} ok + {statuses[402]} refused in the burst ({burst_s:.2f} s), "
          f"{extra} ok after it; {used_rows} of {DAILY_TOKENS} tokens used")


# -- 2. a database key, created and revoked by the CLI ----------------------------------------------

def test_database_key_works_on_both_instances_and_revocation_reaches_both_within_5_s(
        pair: Callable[..., tuple[Gateway, Gateway]]) -> None:
    key = lynkr("keys", "create", "e2e-key").stdout.strip()
    assert key.startswith("sk-lynkr-"), key
    gateways = pair()
    for gateway in gateways:
        assert post(gateway, None).status_code == 401, "a stored key makes every /v1 request need one"
        assert post(gateway, "sk-lynkr-not-a-key").status_code == 401
        for _ in range(4):  # both workers of each instance cache the key as valid
            answer = post(gateway, key)
            assert answer.status_code == 200, answer.text

    # Keep using the key on both instances while it is revoked, so every worker's cache is fresh.
    stop = threading.Event()
    last_ok = [0.0]

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            if post(gateways[i % 2], key).status_code == 200:
                last_ok[0] = time.monotonic()
            i += 1

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    revoked_before = time.monotonic()
    try:
        assert "revoked 1 key(s)" in lynkr("keys", "revoke", "e2e-key").stdout
        revoked = time.monotonic()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert last_ok[0] > revoked_before, "the key must have been in use right up to the revocation"

    def refused_everywhere() -> bool:  # 8 fresh connections per instance, most likely to both workers
        return all(post(gateway, key).status_code == 401 for gateway in gateways for _ in range(8))

    # Which worker accepts a connection is the kernel's choice, so "refused on 16 connections" can
    # come before the last worker's answer expires; the promise is about time: every request that
    # starts REVOKE_TTL_S after the revocation returned is refused, on every worker.
    assert wait_until(refused_everywhere, timeout=REVOKE_TTL_S, interval=0.1)
    took = time.monotonic() - revoked
    time.sleep(max(0.0, revoked + REVOKE_TTL_S - time.monotonic()))
    for gateway in gateways:
        for _ in range(16):
            answer = post(gateway, key)
            assert answer.status_code == 401, f"a worker still let the revoked key in {REVOKE_TTL_S} s on"
            assert answer.json()["error"]["type"] == "authentication_error"
        assert post(gateway, None).status_code == 401, "revoking the last key must not open the gateway"
    print(f"\nrevocation seen on both instances {took:.2f} s after `keys revoke` returned "
          f"(the CLI ran {revoked - revoked_before:.2f} s; last 200 {last_ok[0] - revoked:+.2f} s from its return)")


# -- 3. sessions are scoped to the key that created them --------------------------------------------

def test_another_key_cannot_read_a_session_from_the_other_instance(
        pair: Callable[..., tuple[Gateway, Gateway]]) -> None:
    first, second = pair(LYNKR_API_KEYS=f"{KEY_A},{KEY_B}")
    session = "e2e-scoped-session-1"
    answer = first.post(message_body("Remember the word teapot."),
                        headers={"x-api-key": KEY_A, "x-session-id": session})
    assert answer.status_code == 200, answer.text

    def read(gateway: Gateway, key: str, path: str = f"/v1/sessions/{session}") -> requests.Response:
        return requests.get(gateway.url + path, headers={"x-api-key": key, "Connection": "close"}, timeout=10)

    def stored() -> bool:
        return read(second, KEY_A).status_code == 200 and len(read(second, KEY_A).json()["turns"]) == 2

    assert wait_until(stored, timeout=10, interval=0.1), read(second, KEY_A).text
    own = read(second, KEY_A).json()
    assert own["id"] == session
    assert [(t["role"], t["source"]) for t in own["turns"]] == [("user", "client"), ("assistant", "response")]
    assert own["turns"][0]["content"] == [{"type": "text", "text": "Remember the word teapot."}]
    assert sql("SELECT owner FROM sessions WHERE id = %s", (session,)) == [(key_id(KEY_A),)]

    for gateway in (second, first):
        other = read(gateway, KEY_B)
        assert other.status_code == 404, other.text
        assert other.json()["error"]["type"] == "not_found_error"
        assert "teapot" not in other.text
        listed = read(gateway, KEY_B, "/v1/sessions")
        assert listed.status_code == 200
        assert listed.json()["data"] == []
        assert [s["id"] for s in read(gateway, KEY_A, "/v1/sessions").json()["data"]] == [session]
    assert read(first, KEY_A).status_code == 200
    assert requests.get(second.url + f"/v1/sessions/{session}", timeout=10).status_code == 401

