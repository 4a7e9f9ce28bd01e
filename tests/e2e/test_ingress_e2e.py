"""Ingress through real gunicorn: an oversized chunked upload is a 413, and the official SDK sees
our request id on answers and errors (``_request_id``, ``APIStatusError.request_id``)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.e2e.conftest import DATABRICKS_TOKEN, launch_gateway, stop_gateway, wait_live
from tests.e2e.helpers import Gateway
from tests.fakes.anthropic_upstream import ErrorReply, FakeAnthropicUpstream

pytestmark = pytest.mark.slow
MB = 1024 * 1024
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, FakeAnthropicUpstream]]:
    """One strict fake and one gateway (default REQUEST_JSON_LIMIT of 32 MiB, no retries) for the module."""
    with FakeAnthropicUpstream(strict=True, token=DATABRICKS_TOKEN) as fake:
        gateway = launch_gateway(tmp_path_factory.mktemp("ingress"), fake, API_RETRY_MAX_RETRIES=0)
        try:
            wait_live(gateway)
            yield gateway, fake
        finally:
            problem = stop_gateway(gateway)
        assert problem is None, problem


def chunked_post(port: int, total: int, chunk: int = MB) -> tuple[bytes, bool]:
    """POST ``total`` bytes of JSON-looking body with ``Transfer-Encoding: chunked`` on a raw socket
    while reading the answer; returns the answer's bytes and whether the whole body went out."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "anthropic-version: 2023-06-01\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    sent_all = threading.Event()

    def send() -> None:
        piece = b" " * chunk
        try:
            sock.sendall(head)
            for _ in range(total // chunk):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
            sent_all.set()
        except OSError:  # the server may stop reading once it has answered
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
        sender.join(timeout=30)
    return answer, sent_all.is_set()


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 62


def test_a_50_mb_chunked_upload_is_413_not_truncated_json(shared: tuple[Gateway, FakeAnthropicUpstream]) -> None:
    gateway, fake = shared
    before = len(fake.requests)
    answer, _ = chunked_post(gateway.port, 50 * MB)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[:2] == [b"HTTP/1.1", b"413"]
    error = json.loads(body)
    assert error["error"] == {"type": "request_too_large",
                              "message": "Request body is larger than the limit (REQUEST_JSON_LIMIT)."}
    headers = dict(line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:])
    assert error["request_id"] == headers["request-id"] == headers["x-request-id"]
    assert len(fake.requests) == before


def test_a_small_chunked_upload_is_answered(shared: tuple[Gateway, FakeAnthropicUpstream]) -> None:
    gateway, fake = shared
    before = len(fake.requests)
    body = json.dumps({"model": "claude-sonnet-4-5", "messages": HELLO}).encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    with sock:
        sock.sendall((b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert fake.requests[before].body["max_tokens"] == 64000  # no max_tokens sent: the model's output limit


def test_the_sdk_reads_our_request_id_on_answers_and_errors(shared: tuple[Gateway, FakeAnthropicUpstream]) -> None:
    gateway, fake = shared
    with anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=30) as client:
        raw = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=64, messages=HELLO)
        message = raw.parse()
        assert message._request_id == raw.headers["x-request-id"]
        assert message._request_id.startswith("req_")

        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=HELLO,
                                   metadata="x")  # type: ignore[arg-type]
        assert refused.value.request_id == refused.value.response.headers["x-request-id"]
        assert _body(refused.value)["request_id"] == refused.value.request_id

        fake.script(ErrorReply(529, error_type="overloaded_error", message="Overloaded"))
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=HELLO)
        assert overloaded.value.status_code == 529
        assert overloaded.value.request_id == overloaded.value.response.headers["x-request-id"]
        assert _body(overloaded.value)["request_id"] == overloaded.value.request_id


def test_the_sdk_lists_and_retrieves_models(shared: tuple[Gateway, FakeAnthropicUpstream]) -> None:
    gateway, _ = shared
    with anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=30) as client:
        ids = [model.id for model in client.models.list(limit=2)]  # the SDK follows after_id page by page
        assert ids == ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "databricks-claude-sonnet-4-5"]
        assert client.models.retrieve("claude-sonnet-4-5").display_name == \
            "claude-sonnet-4-5 via databricks (databricks-claude-sonnet-4-5)"
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve("no-such-model")


def _body(error: anthropic.APIStatusError) -> Any:
    return error.response.json()
