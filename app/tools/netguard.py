"""Deciding whether ``web_fetch`` may reach a URL, and connecting only where it decided.

:class:`URLGuard` takes a URL apart, reads every spelling of an IPv4 address as one address
(``2130706433``, ``0177.0.0.1`` and ``0x7f.1`` are all 127.0.0.1, as ``inet_aton`` and browsers
read them), resolves other names with an injectable resolver (``socket.getaddrinfo`` by default)
and refuses the URL unless every address is public — or the operator set
``WEB_FETCH_ALLOW_PRIVATE``. It returns a :class:`Target` holding the addresses it vetted.

:class:`PinnedAdapter` then makes requests connect to one of those addresses, never to what the
name resolves to a moment later (DNS rebinding), while the Host header, TLS SNI and the
certificate check still use the name from the URL.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.adapters import HTTPAdapter

from app.config import Config
from app.tools.base import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's signature and result

DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HEX = re.compile(r"0x[0-9a-f]*", re.IGNORECASE)
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"[0-9]+")


class BlockedURLError(ToolError):
    """``web_fetch`` may not reach this URL; the message says why."""


@dataclass(frozen=True)
class Target:
    """A URL's host as vetted: the name to send, its port, and the addresses it may connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class URLGuard:
    """The fetch policy: public addresses only (unless ``allow_private``), optionally few hosts."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    resolver: Resolver = socket.getaddrinfo

    @classmethod
    def from_config(cls, config: Config, resolver: Resolver = socket.getaddrinfo) -> URLGuard:
        """The guard ``WEB_FETCH_ALLOW_PRIVATE`` and ``WEB_SEARCH_ALLOWED_HOSTS`` describe."""
        hosts = tuple(_bare_host(host) for host in config.web_search_allowed_hosts)
        return cls(config.web_fetch_allow_private, tuple(host for host in hosts if host), resolver)

    def check(self, url: str) -> Target:
        """The vetted :class:`Target` of ``url``; raises :class:`BlockedURLError` when refused."""
        host, port = split_url(url)
        literal = parse_ip(host)
        self._check_allowed(host, literal)
        addresses = [literal] if literal is not None else self._resolve(host, port)
        if not self.allow_private:
            for address in addresses:
                reason = refusal(address)
                if reason:
                    raise BlockedURLError(f"refused to fetch {url}: {host} is {reason} address ({address}); "
                                          "web_fetch only reaches public addresses")
        return Target(host, port, tuple(str(address) for address in addresses))

    def _check_allowed(self, host: str, literal: IPAddress | None) -> None:
        if not self.allowed_hosts:
            return
        name = host if literal is None else str(literal)
        if not any(name == allowed or (literal is None and name.endswith("." + allowed))
                   for allowed in self.allowed_hosts):
            raise BlockedURLError(f"refused to fetch from {host}: it is not in WEB_SEARCH_ALLOWED_HOSTS")

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        except (OSError, UnicodeError, ValueError) as exc:
            raise BlockedURLError(f"cannot resolve {host}") from exc
        if not addresses:
            raise BlockedURLError(f"cannot resolve {host}")
        return addresses


def split_url(url: str) -> tuple[str, int]:
    """The host (lower-case, ASCII, no trailing dot) and port of an http(s) URL without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").rstrip(".").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise BlockedURLError(f"not a valid URL: {url}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BlockedURLError(f"refused to fetch {url}: only http and https URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        raise BlockedURLError(f"refused to fetch {url}: URLs with credentials are not fetched")
    if not host:
        raise BlockedURLError(f"not a valid URL: {url}")
    return host, port or DEFAULT_PORTS[scheme]


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address when it spells one, in any ``inet_aton`` form; None for a name.

    Following the WHATWG URL rules, a host whose last label is a number is an IPv4 address or
    invalid (:class:`BlockedURLError`), never a name to look up.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    labels = host.split(".")
    if not (_DECIMAL.fullmatch(labels[-1]) or _HEX.fullmatch(labels[-1])):
        return None
    parsed = [_number(label) for label in labels]
    values = [value for value in parsed if value is not None]
    if len(values) != len(labels) or len(values) > 4:
        raise BlockedURLError(f"{host} is not a valid IPv4 address")
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (5 - len(values)):
        raise BlockedURLError(f"{host} is not a valid IPv4 address")
    return ipaddress.IPv4Address(sum(value << (8 * (3 - i)) for i, value in enumerate(head)) + last)


def _number(label: str) -> int | None:
    """One part of a legacy IPv4 address: hex ``0x..``, octal ``0..`` or decimal; None otherwise."""
    if _HEX.fullmatch(label):
        return int(label[2:] or "0", 16)
    if _OCTAL.fullmatch(label):
        return int(label, 8)
    if _DECIMAL.fullmatch(label) and (label == "0" or not label.startswith("0")):
        return int(label)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not public (e.g. ``"a loopback"``), or None when it is."""
    if address.is_loopback:
        return "a loopback"
    if address.is_unspecified:
        return "an unspecified"
    inner = embedded_ipv4(address)
    if inner is not None:
        return refusal(inner)
    checks = (
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a shared (carrier-grade NAT)", address in _CGNAT),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("a non-public", not address.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4 or NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) >> 32 == 0 or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _bare_host(entry: str) -> str:
    """An allowed-hosts entry as a host name: lower-case, without ``*.`` or a trailing dot."""
    host = entry.strip().lower().removeprefix("*.").strip(".")
    return str(parse_ip(host) or host)


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that connects to one vetted address of a :class:`Target`.

    Requests still names the URL's host in the Host header, in TLS SNI and in the certificate
    check; only the TCP connection goes to ``address``. A request for any other host is refused.
    """

    def __init__(self, target: Target, address: str) -> None:
        self.target = target
        self.address = address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request: PreparedRequest, verify: Any,
                                             cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool for the pinned address, with TLS checked against the URL's host name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if (host_params["host"] or "").rstrip(".") != self.target.host:
            raise BlockedURLError(f"refused to fetch {request.url}: the host differs from the one vetted")
        host_params["host"] = self.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.target.host
            pool_kwargs["assert_hostname"] = self.target.host
        return host_params, pool_kwargs

    def add_headers(self, request: PreparedRequest, **kwargs: Any) -> None:
        """Name the URL's host (not the pinned address) in the Host header."""
        request.headers["Host"] = urlsplit(request.url or "").netloc
