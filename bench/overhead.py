"""Per-request cost of the request middleware (request id, JSON access log, metrics), in µs.

Runs a trivial WSGI app wrapped the way the gateway wraps its own, with logging to /dev/null,
and prints the added cost per request with metrics and logging on, each alone, and both off:

    .venv/bin/python bench/overhead.py [REQUESTS]
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from app.config import Config
from app.logging import configure_logging
from app.metrics.recorder import NULL_METRICS, build_metrics
from app.web.middleware import RequestLifecycle

Body = Iterable[bytes]


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def environ() -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/messages", "wsgi.url_scheme": "http"}


def per_request_us(app: Callable[..., Body], requests: int) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        body = app(environ(), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close:
            close()
    return (time.perf_counter() - started) / requests * 1e6


def main(requests: int) -> None:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log lines are produced, then dropped
    configure_logging("info")
    metrics = build_metrics(Config(metrics_enabled=True))
    base = per_request_us(bare_app, requests)
    cases = {
        "request id only": RequestLifecycle(bare_app, log_requests=False, metrics=NULL_METRICS),
        "+ JSON access log": RequestLifecycle(bare_app, log_requests=True, metrics=NULL_METRICS),
        "+ metrics": RequestLifecycle(bare_app, log_requests=False, metrics=metrics),
        "+ both": RequestLifecycle(bare_app, log_requests=True, metrics=metrics),
    }
    print(f"bare WSGI call: {base:.1f} µs/request ({requests} requests)")
    for name, app in cases.items():
        print(f"{name:20s} +{per_request_us(app, requests) - base:6.1f} µs/request")
    logging.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
