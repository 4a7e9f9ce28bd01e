"""Reading a streamed upstream body on the caller's own thread, one tick of silence at a time.

A streaming response thread reads its upstream itself — no helper thread per stream, so an open
stream costs one blocked thread. It blocks on the socket for at most one tick (``tick_s``); each
tick without data is handed out as :data:`SILENT` so the caller can send a ping, and a silence
as long as the read timeout raises :class:`TimeoutError`. Before each read it hands out
:data:`READING`: everything read so far is out, so the caller can write what it has in one go.

Once the headers are read the body is taken from the socket directly: one read gives everything
that arrived, however many HTTP chunks that is, so a burst of events costs one read. A body read
to its end gives its connection back to the pool. A body the upstream encoded anyway (gzip,
though streams ask for ``identity``) is decoded on the way when it is gzip or deflate; any other
coding is read through urllib3 instead, without ticks.
"""

from __future__ import annotations

import contextlib
import enum
import re
import socket
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import requests
import urllib3

from app.providers._http import shutdown_response

READ_SIZE = 65536
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_CHUNK_LINE = 4096
DEFAULT_TICK_S = 5.0


class Pause(enum.Enum):
    """What a stream source hands out between items when it has nothing new."""

    READING = "reading"  # everything read so far is out; the next item needs another read
    SILENT = "silent"  # a tick passed without anything new


READING, SILENT = Pause.READING, Pause.SILENT


class BodyReader:
    """Reads one streamed response body on the caller's thread (see the module docstring)."""

    def __init__(self, response: requests.Response, read_timeout_s: float,
                 tick_s: float = DEFAULT_TICK_S) -> None:
        self.response = response
        self.read_timeout_s = read_timeout_s
        self.tick_s = tick_s
        self.ended = False  # the body was read to its end
        self._reusable = False  # ended where its framing said, so the connection is clean
        self._released = False

    def pieces(self) -> Iterator[bytes | Pause]:
        """The body's bytes as they arrive, with a :class:`Pause` before each read and per silent tick.

        A connection that breaks or ends early raises a ``urllib3`` :class:`ProtocolError` or an
        :class:`OSError`; a silence past the read timeout raises :class:`TimeoutError`.
        """
        raw = self.response.raw
        reader = getattr(raw._fp, "fp", None)  # http.client's buffered reader (absent in test doubles)
        sock = getattr(reader.raw, "_sock", None) if reader is not None else None  # the socket under it
        encoding = raw.headers.get("content-encoding", "identity").strip().lower()
        if reader is None or sock is None or encoding not in _DECODERS:
            yield from self._through_urllib3()
            return
        framing = _framing(raw)
        decoder = _DECODERS[encoding]()
        data = _buffered(reader, sock)
        while True:
            if data:
                out = framing.feed(data)
                if out and decoder is not None:
                    out = _decoded(decoder, out)
                if out:
                    yield out
            if framing.done:
                # Bytes past the body's end are not the body's, and leave the connection unusable.
                self.ended, self._reusable = True, not framing.surplus
                return
            yield READING
            data = yield from self._read(sock)
            if not data:
                framing.eof()
                self.ended = True
                return

    def _read(self, sock: socket.socket) -> Generator[Pause, None, bytes]:
        """One read: everything the socket has (a TLS socket's records too), waiting tick by tick."""
        silent_s = 0.0
        while True:
            wait = min(self.tick_s, self.read_timeout_s - silent_s)  # never past the read timeout
            if sock.gettimeout() != wait:
                sock.settimeout(wait)
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                silent_s += wait
                if silent_s >= self.read_timeout_s:
                    raise
                yield SILENT
                continue
            pending = getattr(sock, "pending", None)  # bytes a TLS socket has decrypted already
            while data and pending is not None and pending():
                data += sock.recv(READ_SIZE)
            return data

    def _through_urllib3(self) -> Iterator[bytes | Pause]:
        for chunk in self.response.raw.stream(READ_SIZE, decode_content=True):
            yield chunk
            yield READING
        self.ended = True

    def close(self) -> None:
        """Abort from any thread: shut the socket so a read blocked on it wakes."""
        self._reusable = False
        shutdown_response(self.response)

    def release(self) -> None:
        """Give the connection back to the pool if the body was read to its end, else close it (once)."""
        if self._released:
            return
        self._released = True
        if self._reusable:
            _finish(self.response.raw)
        self.response.close()


def _decoded(decoder: Any, data: bytes) -> bytes:
    try:
        return bytes(decoder.decompress(data))
    except zlib.error as exc:
        raise urllib3.exceptions.ProtocolError(f"The body is not valid {exc}.") from exc


# Content codings read on the direct path; others (br, zstd) go through urllib3, without ticks.
_DECODERS: dict[str, Callable[[], Any]] = {
    "": lambda: None,
    "identity": lambda: None,
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(),
}


def _framing(raw: urllib3.HTTPResponse) -> _Chunked | _Sized | _UntilClose:
    if raw.chunked:
        return _Chunked()
    if raw.length_remaining is not None:
        return _Sized(raw.length_remaining)
    return _UntilClose()


def _buffered(reader: Any, sock: socket.socket) -> bytes:
    """The body bytes http.client read ahead with the headers, taken without blocking."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return reader.read1(READ_SIZE) or b""
    except OSError:  # nothing buffered: would block (TLS: "want read"); a real failure shows on the next read
        return b""
    finally:
        sock.settimeout(timeout)


def _finish(raw: urllib3.HTTPResponse) -> None:
    """What urllib3 does after reading a body to its end: close http.client's side, pool the
    connection (the socket is clean: nothing past the body was read)."""
    if raw._fp is not None:
        with contextlib.suppress(OSError):
            raw._fp.close()
    raw.release_conn()


class _Chunked:
    """HTTP/1.1 chunked transfer coding, decoded incrementally."""

    def __init__(self) -> None:
        self._buffer = b""
        self._left = 0  # bytes of the current chunk still to come
        self._trailer = False  # past the last chunk: trailer lines until an empty one
        self._crlf = 0  # bytes of a chunk's closing CRLF still to skip
        self.done = False
        self.surplus = False  # bytes followed the last chunk

    def feed(self, data: bytes) -> bytes:
        """Decode ``data``; the payload bytes it completes."""
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        position, size = 0, len(buffer)
        while position < size and not self.done:
            if self._left:
                take = min(self._left, size - position)
                out.append(buffer[position:position + take])
                position += take
                self._left -= take
                if not self._left:
                    self._crlf = 2
                continue
            if self._crlf:
                skip = min(self._crlf, size - position)
                if buffer[position:position + skip] != b"\r\n"[2 - self._crlf:2 - self._crlf + skip]:
                    raise urllib3.exceptions.ProtocolError("A chunk does not end with CRLF.")
                position += skip
                self._crlf -= skip
                continue
            end = buffer.find(b"\r\n", position)
            if end < 0:
                if size - position > MAX_CHUNK_LINE:
                    raise urllib3.exceptions.ProtocolError("A chunk-size line is too long.")
                break
            line = buffer[position:end]
            position = end + 2
            if self._trailer:
                self.done = not line
                continue
            size_field = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_field):
                raise urllib3.exceptions.ProtocolError("A chunk-size line is not a number.")
            self._left = int(size_field, 16)
            self._trailer = self._left == 0
        self.surplus = self.done and position < size
        self._buffer = buffer[position:] if not self.done else b""
        return out[0] if len(out) == 1 else b"".join(out)

    def eof(self) -> None:
        """The connection closed: an error unless the last chunk had been read."""
        if not self.done:
            raise urllib3.exceptions.ProtocolError("The response ended before its last chunk.")


class _Sized:
    """A body of a declared length."""

    def __init__(self, length: int) -> None:
        self._left = length
        self.done = length == 0
        self.surplus = False  # bytes followed the declared length

    def feed(self, data: bytes) -> bytes:
        """The body bytes of ``data`` (anything past the declared length is not the body's)."""
        self.surplus = len(data) > self._left
        data = data[:self._left]
        self._left -= len(data)
        self.done = self._left == 0
        return data

    def eof(self) -> None:
        """The connection closed before the declared length."""
        raise urllib3.exceptions.ProtocolError("The response ended before its declared length.")


class _UntilClose:
    """A body that ends when the connection closes."""

    done = False
    surplus = False

    def feed(self, data: bytes) -> bytes:
        """All of ``data``."""
        return data

    def eof(self) -> None:
        """The end of the body."""

