"""Reading a streamed body on the caller's thread, against a real loopback server: framing,
batching, ticks of silence, the read timeout, early ends, the pool, TLS and the urllib3 fallback."""

from __future__ import annotations

import gzip
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import urllib3

from app.errors import ConnectFailedError
from app.providers._http import HttpClient
from app.providers.wire import READING, SILENT, BodyReader, Pause

WAIT_S = 5.0
CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST = b"0\r\n\r\n"


@dataclass
class Script:
    """What the server writes for one request: (delay before, bytes) pairs; then maybe a close."""

    writes: list[tuple[float, bytes]]
    close: bool = False


@dataclass
class ScriptedServer:
    """A loopback HTTP/1.1 server answering each request with the next script, keeping connections."""

    scripts: list[Script]
    tls: ssl.SSLContext | None = None
    connections: int = 0
    listener: socket.socket = field(default_factory=socket.socket)

    def __enter__(self) -> ScriptedServer:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.listener.close()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/v1/messages"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while self.scripts:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                script = self.scripts.pop(0)
                for delay, data in script.writes:
                    time.sleep(delay)
                    conn.sendall(data)
                if script.close:
                    return


def open_body(server: ScriptedServer, client: HttpClient | None = None, *, read_timeout_s: float = 30.0,
              tick_s: float = 5.0) -> BodyReader:
    client = client or HttpClient("test", pool_size=2, connect_timeout_s=5, read_timeout_s=read_timeout_s)
    response = client.post(server.url, headers={}, body=b"{}", stream=True)
    return BodyReader(response, read_timeout_s, tick_s)


def payload(pieces: Iterator[bytes | Pause]) -> list[bytes | Pause]:
    return list(pieces)


def test_chunks_that_arrive_together_come_out_as_one_piece() -> None:
    body = CHUNKED + chunk(b"one ") + chunk(b"two ") + chunk(b"three") + LAST
    with ScriptedServer([Script([(0, body)])]) as server:
        reader = open_body(server)
        assert payload(reader.pieces()) == [b"one two three"]
        assert reader.ended


def test_a_chunk_split_across_reads_is_joined_and_a_pause_comes_before_each_read() -> None:
    first, second = chunk(b"hello world")[:7], chunk(b"hello world")[7:]
    with ScriptedServer([Script([(0, CHUNKED + first), (0.05, second), (0.05, LAST)])]) as server:
        reader = open_body(server)
        assert payload(reader.pieces()) == [b"hell", READING, b"o world", READING]
        assert reader.ended


def test_silence_hands_out_silent_per_tick_then_the_data() -> None:
    with ScriptedServer([Script([(0, CHUNKED), (0.35, chunk(b"late") + LAST)])]) as server:
        reader = open_body(server, tick_s=0.1)
        pieces = payload(reader.pieces())
        assert pieces[0] is READING
        assert pieces[-1] == b"late"
        assert 2 <= pieces.count(SILENT) <= 4


def test_a_silence_as_long_as_the_read_timeout_raises_timeout() -> None:
    with ScriptedServer([Script([(0, CHUNKED), (2.0, LAST)])]) as server:
        reader = open_body(server, read_timeout_s=0.3, tick_s=0.1)
        seen: list[bytes | Pause] = []
        with pytest.raises(TimeoutError):
            seen.extend(reader.pieces())
        assert seen.count(SILENT) == 2


def test_the_tick_can_change_between_reads() -> None:
    with ScriptedServer([Script([(0, CHUNKED), (0.3, chunk(b"x") + LAST)])]) as server:
        reader = open_body(server, tick_s=10.0)
        pieces = reader.pieces()
        assert next(pieces) is READING
        reader.tick_s = 0.1
        assert next(pieces) is SILENT


def test_an_end_before_the_last_chunk_is_a_protocol_error() -> None:
    with ScriptedServer([Script([(0, CHUNKED + chunk(b"part"))], close=True)]) as server:
        reader = open_body(server)
        with pytest.raises(urllib3.exceptions.ProtocolError, match="before its last chunk"):
            payload(reader.pieces())
        assert not reader.ended


def test_a_bad_chunk_size_is_a_protocol_error() -> None:
    with (ScriptedServer([Script([(0, CHUNKED + b"zz\r\nxx\r\n")])]) as server,
          pytest.raises(urllib3.exceptions.ProtocolError, match="not a number")):
        payload(open_body(server).pieces())


def test_a_body_of_declared_length() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 10\r\n\r\n"
    with ScriptedServer([Script([(0, head + b"01234"), (0.05, b"56789")])]) as server:
        reader = open_body(server)
        assert payload(reader.pieces()) == [b"01234", READING, b"56789"]
        assert reader.ended


def test_a_body_that_ends_with_the_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    with ScriptedServer([Script([(0, head + b"abc"), (0.05, b"def")], close=True)]) as server:
        reader = open_body(server)
        assert payload(reader.pieces()) == [b"abc", READING, b"def", READING]
        assert reader.ended
        reader.release()


def test_a_body_read_to_its_end_gives_its_connection_back_to_the_pool() -> None:
    body = CHUNKED + chunk(b"x") + LAST
    with ScriptedServer([Script([(0, body)]), Script([(0, body)])]) as server:
        client = HttpClient("test", pool_size=2, connect_timeout_s=5, read_timeout_s=30)
        for _ in range(2):
            reader = open_body(server, client)
            assert payload(reader.pieces()) == [b"x"]
            reader.release()
        assert server.connections == 1


def test_a_body_let_go_early_closes_its_connection() -> None:
    body = CHUNKED + chunk(b"x")
    with ScriptedServer([Script([(0, body), (0.5, LAST)]), Script([(0, CHUNKED + LAST)])]) as server:
        client = HttpClient("test", pool_size=2, connect_timeout_s=5, read_timeout_s=30)
        reader = open_body(server, client)
        assert next(reader.pieces()) == b"x"
        reader.release()
        reader.release()
        second = open_body(server, client)
        assert payload(second.pieces()) == []
        assert server.connections == 2


def test_close_wakes_a_read_blocked_on_another_thread() -> None:
    with ScriptedServer([Script([(0, CHUNKED), (WAIT_S, LAST)])]) as server:
        reader = open_body(server)
        pieces = reader.pieces()
        assert next(pieces) is READING
        threading.Timer(0.1, reader.close).start()
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ProtocolError):
            next(pieces)
        assert time.monotonic() - started < WAIT_S / 2


def test_a_gzip_body_is_decoded_on_the_way_with_its_pauses() -> None:
    packed = gzip.compress(b"data: {}\n\n" * 50)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    half = len(packed) // 2
    writes = [(0, head + chunk(packed[:half])), (0.05, chunk(packed[half:]) + LAST)]
    with ScriptedServer([Script(writes)]) as server:
        reader = open_body(server)
        pieces = payload(reader.pieces())
        assert READING in pieces
        assert b"".join(p for p in pieces if isinstance(p, bytes)) == b"data: {}\n\n" * 50
        assert reader.ended


def test_a_body_in_a_coding_it_cannot_decode_is_read_through_urllib3() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: x-unknown\r\nTransfer-Encoding: chunked\r\n\r\n"
    with ScriptedServer([Script([(0, head + chunk(b"opaque") + LAST)])]) as server:
        reader = open_body(server)
        assert payload(reader.pieces()) == [b"opaque", READING]
        assert reader.ended


def test_a_corrupt_gzip_body_is_a_protocol_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    with (ScriptedServer([Script([(0, head + chunk(b"not gzip at all") + LAST)])]) as server,
          pytest.raises(urllib3.exceptions.ProtocolError, match="not valid")):
        payload(open_body(server).pieces())


def test_streams_ask_for_an_identity_body(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[requests.PreparedRequest] = []

    def capture(adapter: object, prepared: requests.PreparedRequest, **_: object) -> requests.Response:
        sent.append(prepared)
        raise requests.ConnectionError("captured")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", capture)
    client = HttpClient("test", pool_size=1, connect_timeout_s=1, read_timeout_s=1)
    for stream in (True, False):
        with pytest.raises(ConnectFailedError, match="Could not connect to test"):
            client.post("http://127.0.0.1:9/", headers={}, body=b"{}", stream=stream)
    assert sent[0].headers["Accept-Encoding"] == "identity"
    assert sent[1].headers["Accept-Encoding"] != "identity"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and the certificate."""
    where: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(where / "key.pem"), "-out", str(where / "cert.pem")],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "cert.pem", where / "key.pem")
    return context, where / "cert.pem"


def test_over_tls_everything_arrives_and_the_connection_is_pooled(tls: tuple[ssl.SSLContext, Path]) -> None:
    # Each write is its own TLS record and a TLS read gives one record: the reader also takes
    # what the socket has decrypted already.
    context, cert = tls
    writes = [(0.0, CHUNKED)] + [(0.0, chunk(b"%d " % n)) for n in range(20)] + [(0.0, LAST)]
    with ScriptedServer([Script(writes), Script([(0, CHUNKED + chunk(b"again") + LAST)])], tls=context) as server:
        session = requests.Session()
        readers = []
        for _ in range(2):
            response = session.post(server.url, data=b"{}", stream=True, verify=str(cert),
                                    headers={"Accept-Encoding": "identity"})
            readers.append(BodyReader(response, 30.0))
            pieces = payload(readers[-1].pieces())
            assert readers[-1].ended
            readers[-1].release()
            if len(readers) == 1:
                assert b"".join(p for p in pieces if isinstance(p, bytes)) == b"".join(b"%d " % n for n in range(20))
        assert pieces == [b"again"]
        assert server.connections == 1


def test_a_read_timeout_shorter_than_a_tick_is_kept() -> None:
    with ScriptedServer([Script([(0, CHUNKED), (2.0, LAST)])]) as server:
        reader = open_body(server, read_timeout_s=0.2, tick_s=5.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            payload(reader.pieces())
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5", b"1_0", b""])
def test_a_chunk_size_that_is_not_plain_hex_is_a_protocol_error(size: bytes) -> None:
    with (ScriptedServer([Script([(0, CHUNKED + size + b"\r\nhello\r\n" + LAST)])]) as server,
          pytest.raises(urllib3.exceptions.ProtocolError, match="not a number")):
        payload(open_body(server).pieces())


def test_a_chunk_without_its_crlf_is_a_protocol_error() -> None:
    with (ScriptedServer([Script([(0, CHUNKED + b"5\r\nhelloXX" + LAST)])]) as server,
          pytest.raises(urllib3.exceptions.ProtocolError, match="CRLF")):
        payload(open_body(server).pieces())


def test_bytes_after_the_last_chunk_keep_the_body_but_not_the_connection() -> None:
    body = CHUNKED + chunk(b"x") + LAST + b"junk"
    with ScriptedServer([Script([(0, body)]), Script([(0, CHUNKED + LAST)])]) as server:
        client = HttpClient("test", pool_size=2, connect_timeout_s=5, read_timeout_s=30)
        reader = open_body(server, client)
        assert payload(reader.pieces()) == [b"x"]
        assert reader.ended
        reader.release()
        payload(open_body(server, client).pieces())
        assert server.connections == 2
