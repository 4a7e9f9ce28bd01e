"""The fetch guard's decisions: schemes, IP spellings, resolved addresses, allowed hosts, pinning.

Nothing here opens a socket: names resolve through :func:`make_resolver`, a stub with the shape
of ``socket.getaddrinfo``. Connections through the guard are tested in ``test_web.py``.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
import requests

from app.config import Config
from app.tools.base import ToolError
from app.tools.netguard import BlockedURLError, PinnedAdapter, Target, URLGuard, parse_ip, refusal

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def make_resolver(table: dict[str, list[str]]) -> Any:
    """A getaddrinfo stand-in answering from ``table``; it records the names it is asked."""
    asked: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (address, port)) for address in table[host]]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def make_guard(table: dict[str, list[str]] | None = None, **config: Any) -> URLGuard:
    """A guard built from Config overrides, resolving through ``table``."""
    return URLGuard.from_config(Config(**config), make_resolver(table or {}))


@pytest.mark.parametrize(("host", "address"), [
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("10.0.0.1", "10.0.0.1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("example.com", None),
    ("127.0.0.1.example.com", None),
])
def test_parse_ip_reads_every_ipv4_spelling_inet_aton_reads(host: str, address: str | None) -> None:
    assert parse_ip(host) == (ipaddress.ip_address(address) if address else None)


@pytest.mark.parametrize("host", ["08.0.0.1", "1.2.3.4.5", "256.0.0.1", "1.0x100.1", "foo.123", "1..2"])
def test_a_host_ending_in_a_number_that_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(BlockedURLError, match="not a valid IPv4 address"):
        parse_ip(host)


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "a loopback"),
    ("127.255.0.9", "a loopback"),
    ("::1", "a loopback"),
    ("0.0.0.0", "an unspecified"),
    ("::", "an unspecified"),
    ("10.1.2.3", "a private"),
    ("172.16.0.1", "a private"),
    ("192.168.1.1", "a private"),
    ("fc00::1", "a private"),
    ("fd12:3456::1", "a private"),
    ("169.254.169.254", "a link-local"),
    ("fe80::1", "a link-local"),
    ("100.64.0.1", "a shared (carrier-grade NAT)"),
    ("224.0.0.1", "a multicast"),
    ("ff02::1", "a multicast"),
    ("240.0.0.1", "a private"),
    ("::ffff:127.0.0.1", "a loopback"),
    ("::ffff:169.254.169.254", "a link-local"),
    ("::127.0.0.1", "a loopback"),
    ("64:ff9b::7f00:1", "a loopback"),
    ("64:ff9b::a00:1", "a private"),
    ("2002:7f00:1::", "a loopback"),
    ("2002:a9fe:a9fe::", "a link-local"),
    ("64:ff9b:1::1", "a reserved"),
    ("2001::1", "a private"),
    ("192.0.2.1", "a private"),
])
def test_refusal_names_what_an_address_is(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "8.8.8.8", "64:ff9b::808:808", "2002:808:808::",
                                     "::ffff:8.8.8.8"])
def test_public_addresses_pass_including_nat64_and_6to4_forms_of_public_ipv4(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost:8080/", "http://[::1]/", "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
    "http://0177.0.0.1/", "http://0x7f.1/", "http://[fe80::1%25eth0]/", "http://10.0.0.5/admin",
    "http://internal.test/", "http://mixed.test/",
])
def test_check_refuses_urls_reaching_non_public_addresses(url: str) -> None:
    guard = make_guard({"localhost": ["127.0.0.1", "::1"], "internal.test": ["10.0.0.7"],
                        "mixed.test": [PUBLIC_V4, "192.168.0.10"]})
    with pytest.raises(BlockedURLError, match="web_fetch only reaches public addresses"):
        guard.check(url)


def test_numeric_hosts_are_decided_without_asking_the_resolver() -> None:
    guard = make_guard()
    for url in ("http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://[::1]/"):
        with pytest.raises(BlockedURLError):
            guard.check(url)
    assert guard.resolver.asked == []  # type: ignore[attr-defined]


def test_check_returns_every_vetted_address_for_a_public_name() -> None:
    guard = make_guard({"example.org": [PUBLIC_V6, PUBLIC_V4, PUBLIC_V4]})
    assert guard.check("https://Example.ORG./page?q=1") == Target("example.org", 443, (PUBLIC_V6, PUBLIC_V4))


def test_allow_private_lets_local_addresses_through() -> None:
    guard = make_guard({"localhost": ["127.0.0.1"]}, web_fetch_allow_private=True)
    assert guard.check("http://localhost:8080/x") == Target("localhost", 8080, ("127.0.0.1",))
    assert guard.check("http://0x7f.1/").addresses == ("127.0.0.1",)


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "only http and https"),
    ("gopher://example.org/", "only http and https"),
    ("ftp://example.org/", "only http and https"),
    ("http://user:secret@example.org/", "URLs with credentials"),
    ("http://example.org:99999/", "not a valid URL"),
    ("http:///nohost", "not a valid URL"),
    ("http://nowhere.test/", "cannot resolve nowhere.test"),
])
def test_check_refuses_other_schemes_credentials_and_unresolvable_hosts(url: str, message: str) -> None:
    with pytest.raises(BlockedURLError, match=message):
        make_guard({"example.org": [PUBLIC_V4]}).check(url)


def test_allowed_hosts_admit_the_host_and_its_subdomains_only() -> None:
    table = {name: [PUBLIC_V4] for name in ("docs.python.org", "python.org", "www.python.org",
                                            "evilpython.org", "example.com")}
    guard = make_guard(table, web_search_allowed_hosts=("python.org", "*.example.com"))
    for url in ("https://python.org/", "https://docs.python.org/3/", "https://www.python.org/"):
        assert guard.check(url).addresses == (PUBLIC_V4,)
    for url in ("https://evilpython.org/", "https://example.com.evil.test/", "http://93.184.215.14/"):
        with pytest.raises(BlockedURLError, match="not in WEB_SEARCH_ALLOWED_HOSTS"):
            guard.check(url)
    assert "evilpython.org" not in guard.resolver.asked  # type: ignore[attr-defined]


def test_allowed_hosts_do_not_open_private_addresses() -> None:
    guard = make_guard({"intranet.test": ["10.0.0.2"]}, web_search_allowed_hosts=("intranet.test",))
    with pytest.raises(BlockedURLError, match="a private address"):
        guard.check("http://intranet.test/")


def test_refusals_are_tool_errors() -> None:
    assert issubclass(BlockedURLError, ToolError)


def make_prepared(url: str) -> requests.PreparedRequest:
    return requests.Request("GET", url).prepare()


def test_pinned_adapter_connects_to_the_vetted_address_and_checks_tls_against_the_name() -> None:
    adapter = PinnedAdapter(Target("example.org", 443, (PUBLIC_V4,)), PUBLIC_V4)
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(
        make_prepared("https://example.org/page"), True)
    assert host_params == {"scheme": "https", "host": PUBLIC_V4, "port": None}  # None: the scheme's port
    assert pool_kwargs["server_hostname"] == "example.org"
    assert pool_kwargs["assert_hostname"] == "example.org"
    adapter.close()


def test_pinned_adapter_names_the_url_host_in_the_host_header() -> None:
    adapter = PinnedAdapter(Target("example.org", 8080, (PUBLIC_V4,)), PUBLIC_V4)
    request = make_prepared("http://example.org:8080/page")
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)
    adapter.add_headers(request)
    assert host_params == {"scheme": "http", "host": PUBLIC_V4, "port": 8080}
    assert "server_hostname" not in pool_kwargs
    assert request.headers["Host"] == "example.org:8080"
    adapter.close()


def test_pinned_adapter_refuses_a_request_for_another_host() -> None:
    adapter = PinnedAdapter(Target("example.org", 80, (PUBLIC_V4,)), PUBLIC_V4)
    with pytest.raises(BlockedURLError, match="differs from the one vetted"):
        adapter.build_connection_pool_key_attributes(make_prepared("http://other.test/"), True)
    adapter.close()
