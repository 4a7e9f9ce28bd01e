"""The provider I/O boundary: pooled posts, every transport failure as its own error class, header allow-list."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
import urllib3
from requests.adapters import HTTPAdapter

from app.errors import (
    ConnectFailedError,
    ConnectionBrokenError,
    ConnectRefusedError,
    ConnectTimeoutError,
    LynkrError,
    ReadTimeoutError,
)
from app.providers._http import (
    HttpClient,
    UpstreamTooLargeError,
    client_headers,
    error_from_status,
    map_requests_exceptions,
    map_stream_exceptions,
    read_body,
    shutdown_response,
)

Handler = Callable[[socket.socket, bytes], None]


@pytest.fixture
def loopback() -> Iterator[Callable[[Handler], str]]:
    """``serve(handler)``: a one-connection server on 127.0.0.1 running ``handler``; its base URL."""
    servers: list[tuple[socket.socket, threading.Thread, threading.Event]] = []

    def serve(handler: Handler) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        done = threading.Event()

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                handler(conn, read_request(conn))
                done.wait(5)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        servers.append((listener, thread, done))
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield serve
    for listener, thread, done in servers:
        done.set()
        thread.join(5)
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def client(read_timeout_s: float = 2.0) -> HttpClient:
    return HttpClient("ollama", pool_size=2, connect_timeout_s=1.0, read_timeout_s=read_timeout_s)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_post_answers_with_the_upstreams_response(loopback: Callable[[Handler], str]) -> None:
    seen: list[bytes] = []

    def answer(conn: socket.socket, request: bytes) -> None:
        seen.append(request)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}")

    url = loopback(answer)
    response = client().post(url + "/v1/x", headers={"x-api-key": "k"}, body=b'{"a":1}', stream=False)
    assert (response.status_code, response.json()) == (200, {"ok": True})
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "post /v1/x http/1.1"
    assert {"x-api-key: k", "content-length: 7"} <= set(lines)
    assert body == b'{"a":1}'


def test_the_session_is_pooled_created_once_and_ignores_the_environment() -> None:
    http = client()
    session = http.session
    assert http.session is session
    assert session.trust_env is False
    adapter = session.get_adapter("https://example.com")
    assert isinstance(adapter, HTTPAdapter)
    assert adapter._pool_maxsize == 2
    assert adapter.max_retries.total == 0


def test_a_refused_connection(loopback: Callable[[Handler], str]) -> None:
    port = closed_port()
    with pytest.raises(ConnectRefusedError) as raised:
        client().post(f"http://127.0.0.1:{port}/v1", headers={}, body=b"{}", stream=False)
    assert raised.value.message == f"Could not connect to ollama at 127.0.0.1:{port}: connection refused."
    assert (raised.value.status, raised.value.provider) == (502, "ollama")
    assert isinstance(raised.value.__cause__, requests.ConnectionError)


def test_silence_after_connecting_is_a_read_timeout(loopback: Callable[[Handler], str]) -> None:
    url = loopback(lambda conn, request: None)
    with pytest.raises(ReadTimeoutError) as raised:
        client(read_timeout_s=0.2).post(url + "/v1", headers={}, body=b"{}", stream=False)
    assert raised.value.message == f"ollama at {url.removeprefix('http://')} did not answer in time."
    assert raised.value.status == 504


def test_a_body_cut_short_is_a_broken_connection(loopback: Callable[[Handler], str]) -> None:
    def cut(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial")
        conn.shutdown(socket.SHUT_RDWR)

    url = loopback(cut)
    response = client().post(url + "/v1", headers={}, body=b"{}", stream=True)
    with pytest.raises(ConnectionBrokenError, match=r"^The connection to ollama at .* broke mid-answer\.$"), \
            map_requests_exceptions("ollama", url):
        _ = response.content


def test_a_stream_gone_silent_and_a_stream_reset(loopback: Callable[[Handler], str]) -> None:
    def first_line_then_silence(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")

    url = loopback(first_line_then_silence)
    response = client(read_timeout_s=0.2).post(url + "/v1", headers={}, body=b"{}", stream=True)
    chunks = []
    with pytest.raises(ReadTimeoutError, match=r"went silent mid-stream past the read timeout\.$"), \
            map_stream_exceptions("ollama", url):
        chunks.extend(response.raw.stream(1024, decode_content=True))
    assert chunks == [b"hello"]

    with pytest.raises(ConnectionBrokenError) as raised, map_stream_exceptions("ollama", "http://h:1/x"):
        raise ConnectionResetError(104, "Connection reset by peer")
    assert raised.value.message == "The stream from ollama at h:1 broke: ConnectionResetError."


def test_shutdown_wakes_a_reader_blocked_on_the_stream(loopback: Callable[[Handler], str]) -> None:
    url = loopback(lambda conn, request: conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"))
    response = client(read_timeout_s=30).post(url + "/v1", headers={}, body=b"{}", stream=True)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with map_stream_exceptions("ollama", url):
                list(response.raw.stream(1024))
        except Exception as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    shutdown_response(response)
    reader.join(5)
    assert not reader.is_alive()
    assert [type(e) for e in errors] in ([], [ConnectionBrokenError])  # a clean EOF or a reset, never a hang


@responses.activate
@pytest.mark.parametrize(("raised", "expected", "message"), [
    (requests.ConnectTimeout("x"), ConnectTimeoutError, "Timed out connecting to ollama at h:1."),
    (requests.ConnectionError(urllib3.exceptions.ProtocolError("reset")), ConnectFailedError,
     "The connection to ollama at h:1 closed before it answered."),
    (requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "u", "late")),  # type: ignore[arg-type]
     ReadTimeoutError,
     "ollama at h:1 did not answer in time."),
    (requests.ConnectionError("Name or service not known"), ConnectFailedError,
     "Could not connect to ollama at h:1: host name not found."),
    (requests.exceptions.InvalidURL("bad"), ConnectFailedError, "Request to ollama failed: InvalidURL."),
])
def test_each_requests_failure_maps_to_its_class(raised: Exception, expected: type[LynkrError], message: str) -> None:
    responses.post("http://h:1/v1", body=raised)
    with pytest.raises(expected) as caught:
        client().post("http://h:1/v1", headers={}, body=b"{}", stream=False)
    assert type(caught.value) is expected
    assert caught.value.message == message
    assert caught.value.__cause__ is raised


def test_a_connection_that_breaks_while_a_body_is_read_is_broken_not_unconnected() -> None:
    cause = requests.ConnectionError(urllib3.exceptions.ProtocolError("reset"))
    with pytest.raises(ConnectionBrokenError, match=r"^The connection to ollama at h:1 broke mid-answer\.$"), \
            map_requests_exceptions("ollama", "http://h:1/v1", reading_body=True):
        raise cause


def test_client_headers_keep_the_allow_list_with_a_capped_retry_after() -> None:
    upstream = {"Request-Id": "req_1", "Anthropic-Ratelimit-Tokens-Remaining": "10", "Retry-After": "0.2",
                "Set-Cookie": "a=b", "Content-Length": "5", "X-Internal": "1"}
    assert client_headers(upstream) == {"request-id": "req_1", "anthropic-ratelimit-tokens-remaining": "10",
                                        "retry-after": "1"}
    assert client_headers({"retry-after": "3600"}) == {"retry-after": "60"}
    assert client_headers({"retry-after": "soon"}) == {"retry-after": "60"}
    assert client_headers({}) == {}


def test_error_from_status_carries_what_it_was_given() -> None:
    body: dict[str, Any] = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    error = error_from_status("databricks", 529, "busy", {"retry-after": "3"}, "overloaded_error", body)
    assert (error.status, error.error_type, error.message, error.headers, error.provider) == (
        529, "overloaded_error", "busy", {"retry-after": "3"}, "databricks")
    assert error.envelope("req_1") == body


def test_a_body_within_the_limit_is_read_whole_and_its_connection_reused(loopback: Callable[[Handler], str]) -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789")

    url = loopback(answer)
    response = client().post(url + "/v1", headers={}, body=b"{}", stream=False)
    assert read_body(response, "ollama", url, 10) == b"0123456789"
    assert response.raw.connection is None  # released to the pool, not dropped


def test_a_declared_length_over_the_limit_is_refused_unread(loopback: Callable[[Handler], str]) -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n01234567890")

    url = loopback(answer)
    response = client().post(url + "/v1", headers={}, body=b"{}", stream=False)
    with pytest.raises(UpstreamTooLargeError) as raised:
        read_body(response, "ollama", url, 10)
    assert (raised.value.status, raised.value.provider) == (502, "ollama")
    assert "LYNKR_MAX_UPSTREAM_EVENT_BYTES" in raised.value.message


def test_a_chunked_body_is_refused_once_it_passes_the_limit(loopback: Callable[[Handler], str]) -> None:
    sent: list[int] = []

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        piece = b"x" * 4096
        try:
            for _ in range(1000):  # 4 MB offered; the reader stops after the limit
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent.append(len(piece))
        except OSError:
            return

    url = loopback(answer)
    response = client().post(url + "/v1", headers={}, body=b"{}", stream=False)
    with pytest.raises(UpstreamTooLargeError):
        read_body(response, "ollama", url, 20_000)


def test_a_body_that_breaks_off_is_a_broken_connection_when_read_capped(loopback: Callable[[Handler], str]) -> None:
    def cut(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial")
        conn.shutdown(socket.SHUT_RDWR)

    url = loopback(cut)
    response = client().post(url + "/v1", headers={}, body=b"{}", stream=False)
    with pytest.raises(ConnectionBrokenError):
        read_body(response, "ollama", url, 1000)
