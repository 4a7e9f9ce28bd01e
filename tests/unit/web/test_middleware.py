"""The request lifecycle middleware around a plain WSGI app: ids, one access line and metrics per response."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from app.logging import REQUEST_ID
from app.metrics.recorder import UNMATCHED, NullMetrics
from app.web.middleware import RequestLifecycle, new_request_id


class Metrics(NullMetrics):
    """Records what the middleware reports."""

    enabled = True

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def observe_request(self, method: str, path_template: str, status: int, duration_s: float) -> None:
        self.calls.append(("request", method, path_template, status))

    def stream_opened(self) -> None:
        self.calls.append(("opened",))

    def stream_closed(self) -> None:
        self.calls.append(("closed",))


class Body:
    """A response body that notes when the server closes it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def wsgi_app(status: str = "200 OK", content_type: str = "application/json",
             seen: list[dict[str, Any]] | None = None, body: Body | None = None) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if seen is not None:
            seen.append({"id": environ["lynkr.request_id"], "context": REQUEST_ID.get(),
                         "started": environ["lynkr.started"]})
        environ["lynkr.log"]["provider"] = "ollama"
        start_response(status, [("Content-Type", content_type), ("request-id", "upstream-id"),
                                ("X-Request-ID", "other")])
        return body or Body([b"{}"])

    return app


@pytest.fixture
def access(log_records: Callable[[str], list[logging.LogRecord]]) -> list[logging.LogRecord]:
    logging.getLogger("lynkr.access").setLevel(logging.INFO)
    return log_records("lynkr.access")


def test_new_request_ids_are_random_and_shaped() -> None:
    first, second = new_request_id(), new_request_id()
    assert re.fullmatch(r"req_[0-9a-f]{24}", first)
    assert first != second


def test_a_supplied_id_is_kept_and_echoed_twice_replacing_the_upstreams(access: list[logging.LogRecord]) -> None:
    seen: list[dict[str, Any]] = []
    response = Client(RequestLifecycle(wsgi_app(seen=seen))).get("/x", headers={"X-Request-ID": "client:42"})
    assert response.headers.getlist("X-Request-ID") == ["client:42"]
    assert response.headers.getlist("request-id") == ["client:42"]
    assert seen[0]["id"] == seen[0]["context"] == "client:42"
    assert REQUEST_ID.get() == "client:42"  # log lines of the request carry it until the body is closed
    response.close()
    assert REQUEST_ID.get() is None


@pytest.mark.parametrize("supplied", ["", "has space", "x" * 129, "ünicode"])
def test_an_unusable_id_is_replaced(supplied: str, access: list[logging.LogRecord]) -> None:
    response = Client(RequestLifecycle(wsgi_app())).get("/x", headers={"X-Request-ID": supplied})
    assert re.fullmatch(r"req_[0-9a-f]{24}", response.headers["X-Request-ID"])


def test_one_access_line_and_one_observation_when_the_body_is_closed(access: list[logging.LogRecord]) -> None:
    metrics = Metrics()
    body = Body([b"a", b"b"])
    response = Client(RequestLifecycle(wsgi_app(status="503 Service Unavailable", body=body),
                                       metrics=metrics)).post("/v1/messages")
    assert response.get_data() == b"ab"
    response.close()
    assert body.closed is True
    assert metrics.calls == [("request", "POST", UNMATCHED, 503)]
    assert len(access) == 1
    line = vars(access[0])
    assert (line["levelno"], line["msg"], line["method"], line["path"], line["status"], line["provider"]) == (
        logging.WARNING, "request", "POST", "/v1/messages", 503, "ollama")
    assert line["duration_ms"] >= 0


def test_an_event_stream_counts_as_active_until_closed(access: list[logging.LogRecord]) -> None:
    metrics = Metrics()
    response = Client(RequestLifecycle(wsgi_app(content_type="text/event-stream; charset=utf-8"),
                                       metrics=metrics)).get("/s")
    assert metrics.calls == [("opened",)]
    response.close()
    assert metrics.calls == [("opened",), ("closed",), ("request", "GET", UNMATCHED, 200)]
    assert access[0].levelno == logging.INFO


def test_logging_can_be_off(access: list[logging.LogRecord]) -> None:
    Client(RequestLifecycle(wsgi_app(), log_requests=False)).get("/x").close()
    assert access == []
