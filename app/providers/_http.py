"""The I/O boundary: one pooled HTTP session per provider per process, and error mapping.

Foreign exceptions stop here: :func:`map_requests_exceptions` turns every ``requests``
failure into a :class:`~app.errors.LynkrError` that names the provider, always ``from`` the
original. Pools are sized to the worker's thread count so a busy worker never opens a fresh
connection per request, and created lazily so nothing is shared across ``fork``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from app.errors import (
    ConnectFailedError,
    ConnectionBrokenError,
    ConnectRefusedError,
    ConnectTimeoutError,
    LynkrError,
    ReadTimeoutError,
    UpstreamError,
)
from app.logging import redact
from app.resilience.retry import client_retry_after, parse_retry_after

# Hop-by-hop and transport headers never copied from one side to the other.
RESPONSE_HEADER_PREFIXES = ("anthropic-ratelimit-",)
RESPONSE_HEADERS = frozenset({"request-id", "retry-after"})


class HttpClient:
    """A ``requests`` session with a connection pool for one provider.

    Model calls go straight to the session's transport adapter with a request prepared here:
    ``Session.request`` would merge cookies, hooks, proxies and environment settings on every
    call (none of which a model call has: ``trust_env`` is off, there are no cookies, and an API
    POST must not follow redirects), and that merging cost ~0.2 ms of CPU per request — a tenth
    of the gateway's budget.
    """

    def __init__(self, provider: str, *, pool_size: int, connect_timeout_s: float,
                 read_timeout_s: float) -> None:
        self.provider = provider
        self.pool_size = pool_size
        self.timeout = (connect_timeout_s, read_timeout_s)
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """The pooled session, created on first use (after fork)."""
        if self._session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=0,
                                  pool_block=False)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False
            self._session = session
        return self._session

    def post(self, url: str, *, headers: dict[str, str], body: bytes, stream: bool,
             timeout: tuple[float, float] | None = None) -> requests.Response:
        """POST ``body``; connection failures and timeouts raise :class:`LynkrError`."""
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.headers = CaseInsensitiveDict(self.session.headers)  # requests' defaults (Accept-Encoding, …)
        prepared.headers.update(headers)
        prepared.headers["Content-Length"] = str(len(body))
        if stream:  # read straight from the socket (app.providers.wire): no content coding
            prepared.headers["Accept-Encoding"] = "identity"
        prepared.body = body
        with map_requests_exceptions(self.provider, url):
            prepared.url = _prepared_url(url)
            adapter = self.session.get_adapter(prepared.url)
            return adapter.send(prepared, stream=stream, timeout=timeout or self.timeout)

    def get(self, url: str, *, headers: dict[str, str], timeout: float = 10.0) -> requests.Response:
        """GET ``url`` (for probes)."""
        with map_requests_exceptions(self.provider, url):
            return self.session.get(url, headers=headers, timeout=timeout)


@functools.lru_cache(maxsize=64)
def _prepared_url(url: str) -> str:
    """``url`` as ``requests`` would send it (IDNA host, quoted path), prepared once per URL."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url or url


@contextmanager
def map_requests_exceptions(provider: str, url: str = "", *, reading_body: bool = False) -> Iterator[None]:
    """Translate ``requests``/``urllib3`` failures of a request into the transport error classes.

    Covers sending, reading the headers and reading a body (``response.content``): a body that
    breaks off after the headers is a :class:`ConnectionBrokenError` or :class:`ReadTimeoutError`,
    never a foreign exception.
    """
    where = host_of(url)
    try:
        yield
    except requests.ConnectTimeout as exc:
        raise ConnectTimeoutError(f"Timed out connecting to {provider} at {where}.", provider=provider) from exc
    except requests.ReadTimeout as exc:
        raise ReadTimeoutError(f"{provider} at {where} did not answer in time.", provider=provider) from exc
    except requests.exceptions.ChunkedEncodingError as exc:
        raise ConnectionBrokenError(f"The connection to {provider} at {where} broke mid-answer.",
                                    provider=provider) from exc
    except requests.ConnectionError as exc:
        raise _connection_error(provider, where, exc, reading_body) from exc
    except requests.RequestException as exc:
        raise ConnectFailedError(f"Request to {provider} failed: {_reason(exc)}.", provider=provider) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _stream_error(provider, where, exc) from exc


@contextmanager
def map_stream_exceptions(provider: str, url: str = "") -> Iterator[None]:
    """Translate a failure while reading an open stream (``urllib3`` or the socket's own)."""
    where = host_of(url)
    try:
        yield
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise _stream_error(provider, where, exc) from exc


@functools.lru_cache(maxsize=64)
def host_of(url: str) -> str:
    """``host[:port]`` of ``url``, never its userinfo (how an endpoint is named to anyone); once per URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        return redact(url)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: name the host alone
        port = None
    return f"{host}:{port}" if port else host


def _connection_error(provider: str, where: str, exc: requests.ConnectionError,
                      reading_body: bool) -> UpstreamError:
    """A ``requests.ConnectionError``: no connection, one closed before any answer (a stale pooled
    connection, say: as retryable as no connection), or one that broke or timed out mid-body."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return ReadTimeoutError(f"{provider} at {where} did not answer in time.", provider=provider)
    if isinstance(cause, urllib3.exceptions.ProtocolError) and reading_body:
        return ConnectionBrokenError(f"The connection to {provider} at {where} broke mid-answer.",
                                     provider=provider)
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return ConnectFailedError(f"The connection to {provider} at {where} closed before it answered.",
                                  provider=provider)
    reason = _reason(exc)
    error = ConnectRefusedError if reason == "connection refused" else ConnectFailedError
    return error(f"Could not connect to {provider} at {where}: {reason}.", provider=provider)


def _stream_error(provider: str, where: str, exc: BaseException) -> UpstreamError:
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, requests.ReadTimeout, TimeoutError)):
        return ReadTimeoutError(f"{provider} at {where} went silent mid-stream past the read timeout.",
                                provider=provider)
    return ConnectionBrokenError(f"The stream from {provider} at {where} broke: {type(exc).__name__}.",
                                 provider=provider)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return type(exc).__name__


def client_headers(upstream: Any) -> dict[str, str]:
    """The upstream response headers a client may see (allow-list), ``retry-after`` in whole,
    capped seconds (an HTTP-date counted from now, an unreadable value as the cap).

    The retry decision must not read this copy: the provider keeps the upstream's own value on
    the error (``LynkrError.retry_after``).
    """
    out: dict[str, str] = {}
    for name, value in upstream.items():
        lower = name.lower()
        if lower in RESPONSE_HEADERS or lower.startswith(RESPONSE_HEADER_PREFIXES):
            out[lower] = value
    if "retry-after" in out:
        out["retry-after"] = client_retry_after(parse_retry_after(out["retry-after"], time.time()))
    return out


def shutdown_response(response: requests.Response) -> None:
    """Shut the response's socket down so a thread blocked reading it wakes at once."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class UpstreamTooLargeError(UpstreamError):
    """An upstream JSON body, SSE line or NDJSON line over ``LYNKR_MAX_UPSTREAM_EVENT_BYTES``."""

    def __init__(self, provider: str, limit: int) -> None:
        super().__init__(f"{provider} sent a body or stream event larger than {limit} bytes "
                         "(LYNKR_MAX_UPSTREAM_EVENT_BYTES).", provider=provider)


def read_body(response: requests.Response, provider: str, url: str, limit: int) -> bytes:
    """The whole body of ``response``, read no further than ``limit`` bytes.

    A larger body (declared, or found while reading) raises :class:`UpstreamTooLargeError` and
    drops the connection; a body that breaks off raises the transport error, as
    :func:`map_requests_exceptions` types it. A body read to its end leaves the connection to the pool.
    """
    declared = response.headers.get("content-length", "")
    pieces: list[bytes] = []
    size = 0 if not declared.isdigit() else int(declared)
    with map_requests_exceptions(provider, url, reading_body=True):
        if size <= limit:
            size = 0
            for piece in response.iter_content(65536):
                size += len(piece)
                if size > limit:
                    break
                pieces.append(piece)
    if size > limit:
        response.close()
        raise UpstreamTooLargeError(provider, limit)
    return b"".join(pieces)


def error_from_status(provider: str, status: int, message: str, headers: dict[str, str],
                      error_type: str, body: dict[str, Any] | None = None) -> LynkrError:
    """An error carrying an upstream's status, type and allowed headers."""
    return LynkrError(message, status=status, error_type=error_type, headers=headers, body=body,
                      provider=provider)
