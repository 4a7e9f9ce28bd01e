"""RequestLifecycle: the request id on every response, twice, and when the request arrived."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import Client
from werkzeug.wrappers import Response

from app.web.middleware import RequestLifecycle


def app_answering(headers: list[tuple[str, str]], seen: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.update(environ)
        start_response("200 OK", list(headers))
        return [b"ok"]

    return wsgi


def test_request_id_header_replaces_an_upstream_one_and_equals_x_request_id() -> None:
    seen: dict[str, Any] = {}
    wrapped = RequestLifecycle(app_answering([("request-id", "req_upstream"), ("X-Other", "1")], seen),
                               log_requests=False)
    response = Client(wrapped, Response).get("/", headers={"X-Request-ID": "client-id-1"})
    assert response.headers.getlist("request-id") == ["client-id-1"]
    assert response.headers.getlist("X-Request-ID") == ["client-id-1"]
    assert response.headers["X-Other"] == "1"
    assert seen["lynkr.request_id"] == "client-id-1"
    assert isinstance(seen["lynkr.started"], float)


def test_an_invalid_client_id_is_replaced_in_both_headers() -> None:
    wrapped = RequestLifecycle(app_answering([], {}), log_requests=False)
    response = Client(wrapped, Response).get("/", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["request-id"].startswith("req_")
    assert len(response.headers["request-id"]) == 28
    assert response.headers["request-id"] == response.headers["X-Request-ID"]
