"""Soak: minutes of mixed load against ``lynkr serve`` as users run it, then the books are checked.

    .venv/bin/python bench/soak.py                 # 30 minutes (SOAK_MINUTES), 16 clients
    SOAK_MINUTES=2 .venv/bin/python bench/soak.py  # the short form

The gateway (two workers, server tools on with a workspace, keys and a daily token budget, the
prompt cache on) talks to the tests' scriptable fake Anthropic upstream, which answers one request
in 25 with 429 and ``retry-after``. Clients send a mix: streams, JSON, repeats of one prompt
(cache hits), and a tool round trip. At the end it prints one JSON line:

- ``requests``: what the clients sent; ``rows``: usage rows the gateway wrote (must be equal);
- ``own_5xx``: 5xx answers not caused by the upstream (must be 0);
- ``upstream_429``: how many 429s the upstream gave; ``client_statuses``: every status seen;
- ``rss_mb_start`` / ``rss_mb_end`` / ``rss_growth_pct`` (the gateway's process tree, after a
  warm-up minute; must grow under 10 %).

It exits non-zero when a check fails.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import anthropic_events as ev  # noqa: E402  (the repository's own fakes)
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream, JsonReply, StreamReply  # noqa: E402

KEY = "sk-soak-0000"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
WARMUP_S = 60.0


def upstream_behaviour(counter: itertools.count[int]) -> Any:
    """One request in 25 is a 429 with retry-after; the rest answer as asked."""

    def respond(request: Any) -> Any:
        if next(counter) % 25 == 24:
            return ErrorReply(429, headers={"retry-after": "0"}, error_type="rate_limit_error")
        if isinstance(request.body, dict) and request.body.get("stream"):
            return StreamReply(ev.text_events(["Soaked ", "and ", "steady."]), event_delay=0.01)
        return JsonReply()

    return respond


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return total / 1e6


def client_loop(url: str, stop: threading.Event, statuses: Counter[int], lock: threading.Lock,
                seed: int) -> None:
    """Sends a mix of requests until ``stop``."""
    chooser = random.Random(seed)
    session = requests.Session()
    while not stop.is_set():
        kind = chooser.choice(["json", "stream", "repeat", "repeat", "tool"])
        body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 256,
                                "messages": [{"role": "user", "content": f"Soak {chooser.random()}"}]}
        if kind == "repeat":
            body["messages"] = [{"role": "user", "content": "The same question, again."}]
        if kind == "stream":
            body["stream"] = True
        if kind == "tool":
            body["messages"] += [
                {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{seed}", "name": "Read",
                                                   "input": {"file_path": "a.txt"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{seed}",
                                              "content": "hello"}]}]
        try:
            response = session.post(url + "/v1/messages", json=body, headers=HEADERS, timeout=60,
                                    stream=bool(body.get("stream")))
            _ = response.content
            status = response.status_code
        except requests.RequestException:
            status = 0
        with lock:
            statuses[status] += 1


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    clients = int(os.environ.get("SOAK_CLIENTS", "16"))
    work = Path(tempfile.mkdtemp(prefix="lynkr-soak-"))
    (work / "workspace").mkdir()
    port = 19070
    with FakeAnthropicUpstream() as fake:
        upstream_calls = itertools.count()
        fake.responder = upstream_behaviour(upstream_calls)
        env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")},
               "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2",
               "SESSION_DB_PATH": str(work / "lynkr.db"), "LYNKR_API_KEYS": KEY,
               "BUDGET_KEY_DAILY_TOKENS": "1000000000", "WORKSPACE_ROOT": str(work / "workspace"),
               "MODEL_PROVIDER": "databricks", "DATABRICKS_API_BASE": fake.url, "DATABRICKS_API_KEY": "dapi-soak",
               "DATABRICKS_ENDPOINT_PATH": "/v1/messages", "API_RETRY_MAX_RETRIES": "0",
               "LYNKR_PRESTOP_DELAY_MS": "0", "LOG_LEVEL": "warning"}
        with (work / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=work, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(url + "/health/live", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop = threading.Event()
        threads = [threading.Thread(target=client_loop, args=(url, stop, statuses, lock, seed), daemon=True)
                   for seed in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(min(WARMUP_S, minutes * 60 / 4))
        rss_start = tree_rss_mb(gateway.pid)
        time.sleep(max(0.0, minutes * 60 - min(WARMUP_S, minutes * 60 / 4)))
        rss_end = tree_rss_mb(gateway.pid)
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
    with sqlite3.connect(work / "lynkr.db") as database:
        rows = database.execute("SELECT COUNT(*) FROM client_requests WHERE path = '/v1/messages'").fetchone()[0]
    requests_sent = sum(statuses.values())
    own_5xx = sum(count for status, count in statuses.items() if status >= 500 or status == 0)
    figures = {"minutes": minutes, "clients": clients, "requests": requests_sent, "rows": rows,
               "own_5xx": own_5xx, "upstream_429": statuses.get(429, 0),
               "client_statuses": dict(sorted(statuses.items())),
               "rss_mb_start": round(rss_start, 1), "rss_mb_end": round(rss_end, 1),
               "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 1)}
    print(json.dumps(figures))
    ok = rows == requests_sent and own_5xx == 0 and figures["rss_growth_pct"] < 10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
