"""Two ``lynkr serve`` instances behind a real nginx, on one PostgreSQL and one Redis.

nginx runs the shipped ``deploy/nginx.conf`` with its upstream widened to both instances (as the
README's "Several instances" section says to). Each cluster gets a PostgreSQL schema of its own
(``PGOPTIONS`` sets the instances' ``search_path``; the test role may not create databases) and
API keys of its own; the Redis keys the instances share by name (breakers, cached answers) are
cleared first. What the instances share, shown from the client's side:

* a key's daily token budget: refused at the same total whether one instance or both serve it;
* a per-minute rate limit: the sliding window in Redis counts the requests of both;
* the prompt cache: an answer stored by one instance is a hit on the other;
* a session's transcript: complete whichever instance served each turn;
* a circuit breaker: opened by failures seen by one instance, honoured by the other;
* a rolling restart (SIGTERM, drain, start again) fails no client request through nginx.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
import requests

from app.accounting.auth import key_id
from tests.e2e.conftest import DATABRICKS_TOKEN, free_port, launch_gateway, stop_gateway, wait_live
from tests.e2e.helpers import ANTHROPIC_HEADERS, Gateway, SSERead, message_body, read_sse, wait_until
from tests.e2e.nginx_helpers import Nginx, running_nginx, site_for_test
from tests.fakes import anthropic_events as ev
from tests.fakes.anthropic_events import DEFAULT_USAGE
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, JsonReply, StreamReply
from tests.fakes.behaviours import Pause
from tests.fakes.ollama_upstream import ErrorReply as OllamaError
from tests.fakes.ollama_upstream import FakeOllama

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

DATABASE_URL = os.environ.get("LYNKR_TEST_DATABASE_URL", "postgresql://lynkr:lynkr@127.0.0.1:5432/lynkr_test")
REDIS_URL = os.environ.get("LYNKR_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
SHARED_BY_NAME = ("lynkr:breaker:*", "lynkr:prompt-cache:*")  # not scoped by a key of the test's own
SESSION_HEADER = "x-claude-code-session-id"
MAX_TOKENS = 16
REAL_USAGE = DEFAULT_USAGE["input_tokens"] + DEFAULT_USAGE["output_tokens"]
DAILY_TOKENS = 300
RATE_PER_MINUTE = 6
BREAKER_THRESHOLD = 3
PRESTOP_S = 1.5
LONG_PROMPT = "A long answer, please."
LONG_PIECES = [f"{n} " for n in range(20)]


# -- the cluster ------------------------------------------------------------------------------------

@dataclass
class Cluster:
    """Two instances (``gateways[0]`` is restarted in place), nginx in front, the schema they share."""

    gateways: list[Gateway]
    nginx: Nginx
    schema: str
    settings: dict[str, Any]
    upstream: FakeAnthropicUpstream
    started: list[Gateway] = field(default_factory=list)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement in the cluster's schema; the rows it returns, if any."""
        return sql(query, params, schema=self.schema)

    def restart(self, index: int, workdir: Path) -> Gateway:
        """Start instance ``index`` again on its port (it must have exited) and wait until it is live."""
        port = self.gateways[index].port
        workdir.mkdir()
        gateway = dataclasses.replace(launch_gateway(workdir, self.upstream, **self.settings, PORT=port), port=port)
        self.started.append(gateway)
        wait_live(gateway)
        self.gateways[index] = gateway
        return gateway


def sql(query: str, params: tuple[Any, ...] = (), *, schema: str | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on the test PostgreSQL (autocommit)."""
    options = f"-c search_path={schema}" if schema else ""
    try:
        conn = psycopg2.connect(DATABASE_URL, options=options)
    except psycopg2.OperationalError as exc:  # the server must be there: a failure, not a skip
        pytest.fail(f"PostgreSQL at {DATABASE_URL} is not reachable ({exc}); run scripts/start-services.sh")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def shared_redis() -> redis.Redis:
    """The test Redis; a missing server fails the test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/start-services.sh")
    return client


def two_instance_site(listen_port: int, first: int, second: int) -> str:
    """The shipped site, listening on ``listen_port``, its upstream both instances (as the README says)."""
    site = site_for_test(listen_port, first)
    assert "proxy_next_upstream error http_503 non_idempotent;" in site
    line = f"server 127.0.0.1:{first};"
    assert site.count(line) == 1
    return site.replace(line, f"server 127.0.0.1:{first} max_fails=0;\n    server 127.0.0.1:{second} max_fails=0;")


@contextlib.contextmanager
def running_cluster(tmp: Path, upstream: FakeAnthropicUpstream, **env: Any) -> Iterator[Cluster]:
    """Two instances on a fresh schema and the test Redis, behind nginx; all stopped afterwards."""
    schema = f"lynkr_e2e_{uuid.uuid4().hex[:12]}"
    sql(f"CREATE SCHEMA {schema}")
    client = shared_redis()
    for pattern in SHARED_BY_NAME:
        for name in client.scan_iter(pattern):
            client.delete(name)
    client.close()
    settings = {"DATABASE_URL": DATABASE_URL, "PGOPTIONS": f"-c search_path={schema}", "REDIS_URL": REDIS_URL,
                "WEB_CONCURRENCY": "2", **env}
    started: list[Gateway] = []
    try:
        for name in ("a", "b"):  # both start together: the migration runs once, under its lock
            workdir = tmp / name
            workdir.mkdir()
            started.append(launch_gateway(workdir, upstream, **settings))
        for gateway in started:
            wait_live(gateway)
        port = free_port()
        with running_nginx(tmp / "nginx", two_instance_site(port, started[0].port, started[1].port), port) as nginx:
            yield Cluster(list(started), nginx, schema, settings, upstream, started)
    finally:
        problems = [problem for gateway in started if (problem := stop_gateway(gateway))]
        sql(f"DROP SCHEMA {schema} CASCADE")
        if problems:
            pytest.fail("; ".join(problems))


def new_key() -> str:
    return f"sk-e2e-multi-{uuid.uuid4().hex}"


def post(url: str, key: str | None = None, body: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    """One ``POST /v1/messages`` on a fresh connection."""
    sent = {**ANTHROPIC_HEADERS, "Connection": "close", **(headers or {})}
    if key is not None:
        sent["x-api-key"] = key
    return requests.post(url + "/v1/messages", data=json.dumps(body or message_body(max_tokens=MAX_TOKENS)),
                         headers=sent, timeout=30)


def access_lines(gateway: Gateway) -> list[dict[str, Any]]:
    """The gateway's access-log records."""
    records = []
    for line in gateway.log_lines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            # Only the suffix: the test database's password, "lynkr", is redacted from every log line.
            if isinstance(record, dict) and str(record.get("logger")).endswith(".access"):
                records.append(record)
    return records


# -- budgets and rate limits ------------------------------------------------------------------------

def answered_until_refused(url_for: Callable[[int], str], key: str) -> int:
    """Send until a request is refused with 402; how many were answered before."""
    for answered in range(DAILY_TOKENS // REAL_USAGE + 5):
        response = post(url_for(answered), key)
        if response.status_code != 200:
            assert response.status_code == 402, response.text
            return answered
    raise AssertionError("the budget was never enforced")


def test_a_keys_budget_is_refused_at_the_same_total_on_one_instance_or_alternating_over_two(
        tmp_path: Path, mocked_upstream: FakeAnthropicUpstream) -> None:
    alone, alternating = new_key(), new_key()
    with running_cluster(tmp_path, mocked_upstream, LYNKR_API_KEYS=f"{alone},{alternating}",
                         BUDGET_KEY_DAILY_TOKENS=DAILY_TOKENS) as cluster:
        first = cluster.gateways[0].url
        on_one = answered_until_refused(lambda _: first, alone)
        on_both = answered_until_refused(lambda n: cluster.gateways[n % 2].url, alternating)
        assert on_one == on_both
        assert on_one >= 3, "the budget must take several requests to spend"
        for url in (*(gateway.url for gateway in cluster.gateways), cluster.nginx.url):
            refused = post(url, alternating)
            assert refused.status_code == 402
            assert refused.json()["error"]["type"] == "billing_error"
            assert f"is spent ({on_both * REAL_USAGE} of {DAILY_TOKENS} tokens)" in refused.json()["error"]["message"]

    client = shared_redis()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    spent = [int(client.get(f"lynkr:ctr:key:{key_id(key)}:daily:tokens:{day}") or 0) for key in (alone, alternating)]
    client.close()
    assert spent == [on_one * REAL_USAGE, on_both * REAL_USAGE]
    assert len(mocked_upstream.message_requests()) == on_one + on_both, "a refused request never reaches the upstream"


def test_a_rate_limit_counts_the_requests_of_both_instances(tmp_path: Path,
                                                           mocked_upstream: FakeAnthropicUpstream) -> None:
    key = new_key()
    with running_cluster(tmp_path, mocked_upstream, LYNKR_API_KEYS=key,
                         RATE_LIMIT_REQUESTS_PER_MINUTE=RATE_PER_MINUTE) as cluster:
        started = time.monotonic()
        statuses = [post(cluster.gateways[n % 2].url, key).status_code for n in range(RATE_PER_MINUTE + 4)]
        assert statuses == [200] * RATE_PER_MINUTE + [429] * 4
        refused = post(cluster.nginx.url, key)
        elapsed = time.monotonic() - started
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error"
        assert error["message"].startswith(f"Rate limit of {RATE_PER_MINUTE} requests per minute for key ")
        # The first request leaves the window 60 s after it was taken.
        assert 60 - elapsed - 1 <= int(refused.headers["retry-after"]) <= 60

    client = shared_redis()
    window = client.zcard(f"lynkr:ctr:key:{key_id(key)}:minute:requests:window")
    client.close()
    assert window == RATE_PER_MINUTE
    assert len(mocked_upstream.message_requests()) == RATE_PER_MINUTE


# -- the cache, transcripts and breakers: one cluster, Ollama preferred, Databricks the fallback ----

@dataclass
class Shared:
    cluster: Cluster
    ollama: FakeOllama
    databricks: FakeAnthropicUpstream


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    with (FakeAnthropicUpstream(strict=True, token=DATABRICKS_TOKEN) as databricks, FakeOllama() as ollama,
          running_cluster(tmp_path_factory.mktemp("shared"), databricks, PROMPT_CACHE_ENABLED="true",
                          PREFER_OLLAMA="true", OLLAMA_ENDPOINT=ollama.url, FALLBACK_ENABLED="true",
                          FALLBACK_PROVIDER="databricks", API_RETRY_MAX_RETRIES=0,
                          CIRCUIT_BREAKER_FAILURE_THRESHOLD=BREAKER_THRESHOLD,
                          CIRCUIT_BREAKER_TIMEOUT=600_000) as cluster):
        yield Shared(cluster, ollama, databricks)


def upstream_calls_with(shared: Shared, text: str) -> int:
    """Requests either upstream received whose body mentions ``text``."""
    bodies = [request.body for request in shared.ollama.chat_requests()] + [
        request.body for request in shared.databricks.message_requests()]
    return sum(text in json.dumps(body) for body in bodies)


def test_an_answer_stored_by_one_instance_is_a_cache_hit_on_the_other(shared: Shared) -> None:
    first, second = shared.cluster.gateways
    nonce = uuid.uuid4().hex
    body = message_body(f"Cache this answer ({nonce}).")
    stored = post(first.url, body=body)
    assert stored.status_code == 200, stored.text
    assert "x-lynkr-cache" not in stored.headers
    hit = post(second.url, body=body)
    assert hit.status_code == 200, hit.text
    assert hit.headers["x-lynkr-cache"] == "hit"
    assert hit.json()["content"] == stored.json()["content"]
    assert hit.json()["usage"]["cache_read_input_tokens"] > 0
    assert upstream_calls_with(shared, nonce) == 1


def turn_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)


def test_a_sessions_transcript_is_complete_whichever_instance_served_each_turn(shared: Shared) -> None:
    first, second = shared.cluster.gateways
    session = f"e2e-multi-{uuid.uuid4().hex}"
    history: list[dict[str, Any]] = []
    answers = []
    for turn, gateway in enumerate([first, second, first, second]):
        history.append({"role": "user", "content": f"Turn {turn} of {session}."})
        answer = post(gateway.url, body={**message_body(), "messages": history}, headers={SESSION_HEADER: session})
        assert answer.status_code == 200, answer.text
        answers.append(turn_text(answer.json()["content"]))
        history.append({"role": "assistant", "content": answer.json()["content"]})

    def read(gateway: Gateway) -> list[dict[str, Any]]:
        response = requests.get(f"{gateway.url}/v1/sessions/{session}", headers={"Connection": "close"}, timeout=10)
        return response.json()["turns"] if response.status_code == 200 else []

    assert wait_until(lambda: len(read(first)) == 8 and len(read(second)) == 8, timeout=15, interval=0.1), \
        (read(first), read(second))
    for gateway in (first, second):
        turns = read(gateway)
        assert [(t["position"], t["role"], t["source"]) for t in turns] == [
            (n, role, source) for n in range(8)
            for role, source in [("user", "client") if n % 2 == 0 else ("assistant", "response")]]
        assert [turn_text(t["content"]) for t in turns] == [
            text for n in range(4) for text in (f"Turn {n} of {session}.", answers[n])]


def test_a_breaker_opened_by_one_instance_is_honoured_by_the_other(shared: Shared) -> None:
    first, second = shared.cluster.gateways
    shared.ollama.responder = lambda request: OllamaError(500, "fake Ollama failure")
    try:
        for number in range(BREAKER_THRESHOLD):
            answer = post(first.url, body=message_body(f"Fail over {number} {uuid.uuid4().hex}"))
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-lynkr-provider"] == "databricks"
        failed = len(shared.ollama.chat_requests())

        view = requests.get(second.url + "/metrics/circuit-breakers", timeout=10).json()["breakers"]["ollama"]
        assert view["state"] == "OPEN", view
        for number in range(6):  # fresh connections: both of the second instance's workers
            answer = post(second.url, body=message_body(f"Skip Ollama {number} {uuid.uuid4().hex}"))
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-lynkr-provider"] == "databricks"
        assert len(shared.ollama.chat_requests()) == failed, "the second instance called Ollama with its breaker open"
    finally:
        shared.ollama.responder = None


# -- a rolling restart ------------------------------------------------------------------------------

@dataclass
class Load:
    """Clients sending requests through nginx until stopped; every outcome other than a complete answer."""

    url: str
    threads: int = 4
    done: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, number: int) -> None:
        sent = 0
        while not self.stop.is_set():
            stream = (number + sent) % 2 == 1
            sent += 1
            try:
                problem = self._one(stream)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with self.lock:
                self.done += 1
                if problem:
                    self.failures.append(problem)

    def _one(self, stream: bool) -> str | None:
        body = json.dumps(message_body(f"Keep going {uuid.uuid4().hex}", stream=stream, max_tokens=MAX_TOKENS))
        with requests.post(self.url + "/v1/messages", data=body, headers={**ANTHROPIC_HEADERS, "Connection": "close"},
                           stream=stream, timeout=30) as response:
            if response.status_code != 200:
                return f"{response.status_code}: {response.text}"
            if stream:
                types = read_sse(response).types
                return None if types[-1:] == ["message_stop"] else f"stream ended with {types[-3:]}"
            return None if response.json()["content"] else "empty answer"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        target = self.done + count
        assert wait_until(lambda: self.done >= target, timeout=timeout, interval=0.05), (self.done, target)


def test_a_rolling_restart_of_one_instance_fails_no_request_through_nginx(
        tmp_path: Path, mocked_upstream: FakeAnthropicUpstream) -> None:
    def answer(request: Any) -> StreamReply | JsonReply:
        if LONG_PROMPT in json.dumps(request.body):
            return streamed(LONG_PIECES, 0.15)
        if request.stream:
            return streamed([f"{n} " for n in range(5)], 0.04)
        return JsonReply(delay=0.05)

    mocked_upstream.responder = answer
    with running_cluster(tmp_path, mocked_upstream, LYNKR_PRESTOP_DELAY_MS=int(PRESTOP_S * 1000),
                         GRACEFUL_SHUTDOWN_TIMEOUT=15_000) as cluster:
        old = cluster.gateways[0]
        load = Load(cluster.nginx.url)
        with ThreadPoolExecutor(load.threads) as pool:
            running = [pool.submit(load.run, number) for number in range(load.threads)]
            try:
                load.wait_for(20)
                # A long stream on the instance being stopped must finish during the drain.
                first_delta = threading.Event()
                with ThreadPoolExecutor(1) as side:
                    in_flight = side.submit(read_long_stream, old, first_delta)
                    assert first_delta.wait(10)
                    assert old.stop(signal.SIGTERM) == 0, old.log_text()
                    assert in_flight.result(timeout=30) == LONG_PIECES
                stopped_at = load.done
                new = cluster.restart(0, tmp_path / "a-again")
                load.wait_for(20)
                assert wait_until(lambda: any(r.get("path") == "/v1/messages" for r in access_lines(new)),
                                  timeout=15, interval=0.1), "nginx never sent a request to the restarted instance"
                load.wait_for(10)
            finally:
                load.stop.set()
                for future in running:
                    future.result(timeout=60)

    assert load.failures == [], load.failures[:5]
    assert load.done > stopped_at + 30
    # nginx met both kinds of refusal and passed each request on: the drain's 503s while the old
    # instance was stopping, and refused connections while neither it nor its successor listened.
    drained = [r for r in access_lines(old) if r.get("path") == "/v1/messages" and r.get("status") == 503]
    assert drained, "no request reached the instance while it drained"
    assert "Connection refused" in cluster.nginx.log("error.log")


def streamed(pieces: list[str], delay: float) -> StreamReply:
    """A text stream of ``pieces``, ``delay`` seconds apart."""
    events: list[dict[str, Any] | Pause] = [*ev.text_events(pieces)]
    return StreamReply(events, event_delay=delay)


def read_long_stream(gateway: Gateway, first_delta: threading.Event) -> list[str]:
    """The text deltas of one streamed answer read directly from ``gateway``; sets ``first_delta``."""
    def started(seen: SSERead) -> bool:
        if "content_block_delta" in seen.types:
            first_delta.set()
        return False

    with gateway.post(message_body(LONG_PROMPT, stream=True, max_tokens=MAX_TOKENS), stream=True) as response:
        assert response.status_code == 200
        seen = read_sse(response, until=started)
    assert seen.types[-1] == "message_stop"
    return [event["delta"]["text"] for event in seen.events if event["type"] == "content_block_delta"]
