"""web_fetch and web_search against real HTTP servers on 127.0.0.1 that record every request.

A fetch the guard refuses must leave the local server without a single hit; with
WEB_FETCH_ALLOW_PRIVATE the same server is reachable, which shows the refusal (not a dead
server) is what kept it quiet. Public first hops are faked with ``responses`` (its passthrough
lets a wrongly allowed second hop really reach the local server); host names resolve through stub
resolvers, so nothing here leaves the machine.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from app.tools.base import ToolError
from app.tools.netguard import BlockedURLError, PinnedAdapter, Target
from app.tools.web import WEB_TOOLS, SearchError, html_to_text, make_web_fetch, search_results

PUBLIC_V4 = "93.184.215.14"


@dataclass
class Hit:
    """One request the local server received."""

    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    site: LocalSite

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that hangs up is part of these tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded hits are the log."""

    def do_GET(self) -> None:
        site = self.server.site
        site.hits.append(Hit(self.path, {name.lower(): value for name, value in self.headers.items()}))
        page = site.pages.get(urlsplit(self.path).path)
        try:
            if page is None:
                self.reply(404, b"not found", "text/plain")
            else:
                page(self)
        except OSError:
            self.close_connection = True

    def reply(self, status: int, body: bytes, content_type: str | None = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


Page = Callable[[_Handler], None]


class LocalSite:
    """An HTTP(S) server on ``host`` serving ``pages`` by path and recording every request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.pages: dict[str, Page] = {}
        self.hits: list[Hit] = []
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.sent = 0
        self._server = _Server((host, port), _Handler)
        self._server.site = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> LocalSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def make_page(body: bytes | str, content_type: str | None = "text/html; charset=utf-8", status: int = 200,
              headers: dict[str, str] | None = None) -> Page:
    data = body.encode() if isinstance(body, str) else body
    return lambda handler: handler.reply(status, data, content_type, headers)


def make_resolver(table: dict[str, str | list[str]]) -> Any:
    """getaddrinfo answering ``table`` for its names and asking the real one for the rest."""

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            addresses = table[host]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                    for address in ([addresses] if isinstance(addresses, str) else addresses)]
        return socket.getaddrinfo(host, port, *args, **kwargs)

    return resolve


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        running.pages["/"] = make_page("<html><head><title>Local</title></head><body><p>Hello from "
                                       "<a href='/x'>the local</a> server.</p></body></html>")
        yield running


@pytest.fixture
def fetch(make_ctx: Any) -> Callable[..., str]:
    """Runs the web_fetch tool on ``url`` with Config overrides, a stub resolver and a body cap."""

    def run(url: str, *, table: dict[str, str | list[str]] | None = None, max_body_bytes: int = 2 * 1024 * 1024,
            args: dict[str, Any] | None = None, **config: Any) -> str:
        tool = make_web_fetch(make_resolver(table or {}), max_body_bytes)
        return tool.run(make_ctx(**config), {"url": url, **(args or {})})

    return run


LOCAL_PAGE_TEXT = "Local\n\nHello from the local server."
LOOPBACK_URLS = [
    "http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://[::1]:{port}/", "http://0.0.0.0:{port}/",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:{port}/", "http://2130706433:{port}/",
    "http://0177.0.0.1:{port}/", "http://0x7f.1:{port}/", "http://127.1:{port}/", "http://rebind.test:{port}/",
]


# -- SSRF -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", LOOPBACK_URLS)
def test_fetches_of_local_addresses_are_refused_before_any_connection(fetch: Any, site: LocalSite,
                                                                      url: str) -> None:
    with pytest.raises(BlockedURLError, match="web_fetch only reaches public addresses") as refused:
        fetch(url.format(port=site.port), table={"rebind.test": "127.0.0.1"})
    assert site.hits == []
    assert "Traceback" not in str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "0x7f.1", "rebind.test"])
def test_allow_private_fetches_the_local_page_as_text(fetch: Any, site: LocalSite, host: str) -> None:
    url = f"http://{host}:{site.port}/"
    assert fetch(url, table={"rebind.test": "127.0.0.1"}, web_fetch_allow_private=True) == LOCAL_PAGE_TEXT
    assert [(hit.path, hit.headers["host"]) for hit in site.hits] == [("/", f"{host}:{site.port}")]


def test_the_connection_goes_to_the_vetted_address_without_resolving_the_name_again(
        fetch: Any, site: LocalSite, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    text = fetch(f"http://rebind.test:{site.port}/", table={"rebind.test": "127.0.0.1"},
                 web_fetch_allow_private=True)
    assert text == LOCAL_PAGE_TEXT
    assert "rebind.test" not in looked_up  # a rebinding DNS answer at connect time is never asked for
    assert site.hits[0].headers["host"] == f"rebind.test:{site.port}"


def test_a_host_whose_first_address_refuses_is_fetched_from_its_next_vetted_address(
        fetch: Any, site: LocalSite) -> None:
    table: dict[str, str | list[str]] = {"two.test": ["127.0.0.3", "127.0.0.1"]}  # nothing listens on .3
    assert fetch(f"http://two.test:{site.port}/", table=table, web_fetch_allow_private=True) == LOCAL_PAGE_TEXT
    assert len(site.hits) == 1


def test_one_private_address_among_public_ones_refuses_the_host(fetch: Any, site: LocalSite) -> None:
    with pytest.raises(BlockedURLError, match=r"mixed\.test is a loopback address \(127\.0\.0\.1\)"):
        fetch(f"http://mixed.test:{site.port}/", table={"mixed.test": [PUBLIC_V4, "127.0.0.1"]})
    assert site.hits == []


def test_a_redirect_from_a_public_host_to_loopback_is_refused(fetch: Any, site: LocalSite) -> None:
    with responses.RequestsMock() as mocked:
        mocked.add_passthru(site.url(""))
        mocked.get("http://public.test/start", status=302, headers={"Location": site.url("/secret")})
        with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1 is a loopback address"):
            fetch("http://public.test/start", table={"public.test": PUBLIC_V4})
    assert site.hits == []


def test_the_same_redirect_reaches_the_local_server_when_private_addresses_are_allowed(
        fetch: Any, site: LocalSite) -> None:
    with responses.RequestsMock() as mocked:
        mocked.add_passthru(site.url(""))
        mocked.get("http://public.test/start", status=302, headers={"Location": site.url("/")})
        text = fetch("http://public.test/start", table={"public.test": PUBLIC_V4}, web_fetch_allow_private=True)
    assert text == f"[redirected to {site.url('/')}]\n\n{LOCAL_PAGE_TEXT}"
    assert [hit.path for hit in site.hits] == ["/"]


def test_every_redirect_hop_is_checked_against_the_allowed_hosts(fetch: Any, site: LocalSite) -> None:
    site.pages["/away"] = make_page("", status=301, headers={"Location": f"http://other.test:{site.port}/"})
    table = {"docs.test": "127.0.0.1", "other.test": "127.0.0.1"}
    with pytest.raises(BlockedURLError, match=r"other\.test: it is not in WEB_SEARCH_ALLOWED_HOSTS"):
        fetch(f"http://docs.test:{site.port}/away", table=table, web_fetch_allow_private=True,
              web_search_allowed_hosts=("docs.test",))
    assert [hit.path for hit in site.hits] == ["/away"]


def test_relative_redirects_are_followed(fetch: Any, site: LocalSite) -> None:
    site.pages["/old"] = make_page("", status=307, headers={"Location": "/"})
    text = fetch(site.url("/old"), web_fetch_allow_private=True)
    assert text == f"[redirected to {site.url('/')}]\n\n{LOCAL_PAGE_TEXT}"


def test_more_than_five_redirects_are_refused(fetch: Any, site: LocalSite) -> None:
    site.pages["/loop"] = make_page("", status=302, headers={"Location": "/loop"})
    with pytest.raises(ToolError, match="redirected more than 5 times"):
        fetch(site.url("/loop"), web_fetch_allow_private=True)
    assert len(site.hits) == 6


def test_allowed_hosts_restrict_fetches(fetch: Any, site: LocalSite) -> None:
    table = {"docs.test": "127.0.0.1", "api.docs.test": "127.0.0.1", "other.test": "127.0.0.1"}
    config = {"web_fetch_allow_private": True, "web_search_allowed_hosts": ("docs.test",)}
    assert fetch(f"http://api.docs.test:{site.port}/", table=table, **config) == LOCAL_PAGE_TEXT
    with pytest.raises(BlockedURLError, match="not in WEB_SEARCH_ALLOWED_HOSTS"):
        fetch(f"http://other.test:{site.port}/", table=table, **config)
    assert len(site.hits) == 1


def test_no_credentials_cookies_or_proxies_reach_the_fetched_site(
        fetch: Any, site: LocalSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password netrc-secret\n")
    with LocalSite() as proxy:
        monkeypatch.setenv("NETRC", str(netrc))
        monkeypatch.setenv("HTTP_PROXY", proxy.url(""))
        monkeypatch.setenv("NO_PROXY", "")
        fetch(site.url("/"), web_fetch_allow_private=True, databricks_api_key="dapi-provider-secret")
    assert proxy.hits == []
    headers = site.hits[0].headers
    assert not {"authorization", "cookie", "x-api-key", "proxy-authorization"} & set(headers)
    assert not any("secret" in value or "key-1" in value for value in headers.values())


# -- body, timeouts, content types ----------------------------------------------------------------

def test_the_body_is_read_only_up_to_the_byte_cap(fetch: Any, site: LocalSite) -> None:
    total = 64 * 1024 * 1024

    def huge(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        try:
            while site.sent < total:
                handler.wfile.write(b"a" * 65536)
                site.sent += 65536
        finally:
            site.finished.set()

    site.pages["/huge"] = huge
    text = fetch(site.url("/huge"), max_body_bytes=100_000, web_fetch_allow_private=True,
                 web_fetch_body_preview_max=0)
    assert text == "[page larger than 100000 bytes: only the first 100000 bytes were read]\n\n" + "a" * 100_000
    assert site.finished.wait(10)
    assert site.sent < total  # the fetch hung up instead of reading on


def test_a_server_slower_than_the_timeout_fails_the_fetch(fetch: Any, site: LocalSite) -> None:
    site.pages["/slow"] = lambda handler: None if site.stopping.wait(5) else handler.reply(200, b"late")
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 300 ms"):
        fetch(site.url("/slow"), web_fetch_allow_private=True, web_search_timeout_ms=300)
    assert time.monotonic() - started < 2


def test_a_body_dripping_slower_than_the_timeout_fails_the_fetch(fetch: Any, site: LocalSite) -> None:
    def drip(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            if site.stopping.wait(0.1):
                return
            handler.wfile.write(b"x")

    site.pages["/drip"] = drip
    started = time.monotonic()
    with pytest.raises(ToolError, match="took longer than 500 ms"):
        fetch(site.url("/drip"), web_fetch_allow_private=True, web_search_timeout_ms=500)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(("body", "content_type"), [
    ('{"ok": true, "items": [1, 2]}', "application/json"),
    ("plain  text\n  kept as is\n", "text/plain; charset=utf-8"),
    ("<feed><title>x</title></feed>", "application/atom+xml"),
    ("no content type", None),
])
def test_non_html_text_is_returned_as_is(fetch: Any, site: LocalSite, body: str, content_type: str | None) -> None:
    site.pages["/data"] = make_page(body, content_type)
    assert fetch(site.url("/data"), web_fetch_allow_private=True) == body


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "is image/png, not text"),
    (b"\x00\x01\x02", None, "is binary data, not text"),
])
def test_binary_bodies_are_refused(fetch: Any, site: LocalSite, body: bytes, content_type: str | None,
                                   message: str) -> None:
    site.pages["/bin"] = make_page(body, content_type)
    with pytest.raises(ToolError, match=message):
        fetch(site.url("/bin"), web_fetch_allow_private=True)


@pytest.mark.parametrize(("status", "message"), [(404, "answered HTTP 404 Not Found"),
                                                 (500, "answered HTTP 500 Internal Server Error")])
def test_error_statuses_are_tool_errors(fetch: Any, site: LocalSite, status: int, message: str) -> None:
    site.pages["/err"] = make_page("<p>oops</p>", status=status)
    with pytest.raises(ToolError, match=message):
        fetch(site.url("/err"), web_fetch_allow_private=True)


def test_an_unreachable_server_is_a_one_sentence_error(fetch: Any) -> None:
    with LocalSite() as closed:
        port = closed.port
    with pytest.raises(ToolError, match="could not connect or the connection broke") as failed:
        fetch(f"http://127.0.0.1:{port}/", web_fetch_allow_private=True)
    assert "Traceback" not in str(failed.value)
    assert "\n" not in str(failed.value)


ARTICLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lynkr &amp; friends</title>
<style>p { color: red }</style><script>document.write("<p>hidden</p>")</script></head>
<body>
<nav><a href="/">Home</a> <a href="/docs">Docs</a></nav>
<main>
<h1>Fetching  pages</h1>
<p>Lynkr turns <a href="https://example.org/html">HTML</a> into   text.
It keeps <strong>link text</strong>.</p>
<h2>Steps</h2>
<ol>
  <li>Resolve the host</li>
  <li>Check <em>every</em> address</li>
</ol>
<pre>def f():
    return 1</pre>
<p>Line one<br>Line two</p>
<table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>
</main>
<aside>Related links</aside>
<footer>&copy; 2025 Lynkr</footer>
<noscript>Enable JavaScript</noscript>
</body></html>"""

ARTICLE_TEXT = """Lynkr & friends

# Fetching pages

Lynkr turns HTML into text. It keeps link text.

## Steps

- Resolve the host
- Check every address

def f():
    return 1

Line one
Line two

Name Value
a 1"""


def test_html_becomes_readable_text(fetch: Any, site: LocalSite) -> None:
    site.pages["/article"] = make_page(ARTICLE)
    assert fetch(site.url("/article"), web_fetch_allow_private=True) == ARTICLE_TEXT


def test_html_without_a_charset_header_is_decoded_by_its_meta_charset(fetch: Any, site: LocalSite) -> None:
    page = '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body><p>Crème brûlée</p></body></html>'
    site.pages["/latin"] = make_page(page.encode("iso-8859-1"), "text/html")
    assert fetch(site.url("/latin"), web_fetch_allow_private=True) == "Café\n\nCrème brûlée"


def test_html_to_text_without_a_title_starts_with_the_body() -> None:
    assert html_to_text("<div>One</div><div>Two <span>three</span></div>") == "One\n\nTwo three"


@pytest.mark.parametrize(("config", "args", "expected"), [
    ({"web_fetch_body_preview_max": 10}, {}, "abcdefghij\n… [truncated: 16 more characters]"),
    ({}, {"max_chars": 5}, "abcde\n… [truncated: 21 more characters]"),
    ({"web_fetch_body_preview_max": 5}, {"max_chars": 50}, "abcde\n… [truncated: 21 more characters]"),
])
def test_the_text_is_cut_to_the_preview_limit_with_a_note(fetch: Any, site: LocalSite, config: dict[str, Any],
                                                          args: dict[str, Any], expected: str) -> None:
    site.pages["/abc"] = make_page("abcdefghijklmnopqrstuvwxyz", "text/plain")
    assert fetch(site.url("/abc"), args=args, web_fetch_allow_private=True, **config) == expected


# -- pinning over TLS -----------------------------------------------------------------------------

def make_cert(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for ``name``, made by the openssl command."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed (Debian package openssl)")
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize(("cert_name", "works"), [("pinned.test", True), ("other.test", False)])
def test_a_pinned_tls_connection_checks_the_certificate_against_the_url_name(
        tmp_path: Path, cert_name: str, works: bool) -> None:
    cert, key = make_cert(tmp_path, cert_name)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    tls.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc,return-value]
    with LocalSite(tls=tls) as secure, requests.Session() as session:
        secure.pages["/"] = make_page("secret", "text/plain")
        session.mount("https://", PinnedAdapter(Target("pinned.test", secure.port, ("127.0.0.1",)), "127.0.0.1"))
        url = f"https://pinned.test:{secure.port}/"
        if works:
            assert session.get(url, verify=str(cert), timeout=5).text == "secret"
            assert secure.hits[0].headers["host"] == f"pinned.test:{secure.port}"
        else:
            with pytest.raises(requests.exceptions.SSLError):
                session.get(url, verify=str(cert), timeout=5)
            assert secure.hits == []
    assert names[:1] == ["pinned.test"]


# -- web_search -----------------------------------------------------------------------------------

SEARX_ANSWER = {"query": "asyncio tutorial", "number_of_results": 6, "results": [
    {"title": "asyncio  docs", "url": "https://docs.python.org/3/library/asyncio.html",
     "content": "asyncio is a library\nto write concurrent code", "engine": "duckduckgo"},
    {"title": "Example", "url": "https://example.com/async", "content": "An example"},
    {"title": "", "url": "https://www.python.org/", "content": ""},
    {"title": "No URL"},
    {"title": "FTP mirror", "url": "ftp://files.test/pub/"},
    {"title": "Blog", "url": "https://blog.example.com/post", "content": "A post"},
]}

SEARCH_TEXT = """1. asyncio docs
   https://docs.python.org/3/library/asyncio.html
   asyncio is a library to write concurrent code

2. Example
   https://example.com/async
   An example

3. https://www.python.org/
   https://www.python.org/

4. Blog
   https://blog.example.com/post
   A post"""


@pytest.fixture
def searx() -> Iterator[LocalSite]:
    """A fake SearXNG on 127.0.0.1 answering ``/search`` with :data:`SEARX_ANSWER`."""
    with LocalSite() as running:
        running.pages["/search"] = make_page(json.dumps(SEARX_ANSWER), "application/json")
        yield running


def search(make_ctx: Any, args: dict[str, Any], **config: Any) -> Any:
    tool = next(tool for tool in WEB_TOOLS if tool.name == "web_search")
    return tool.run(make_ctx(**config), args)


def test_web_search_asks_the_endpoint_with_searxng_parameters_and_the_key(make_ctx: Any, searx: LocalSite) -> None:
    text = search(make_ctx, {"query": "asyncio tutorial"}, web_search_endpoint=searx.url("/search"),
                  web_search_api_key="search-key", databricks_api_key="dapi-provider-secret")
    assert text == SEARCH_TEXT
    [hit] = searx.hits
    assert urlsplit(hit.path).path == "/search"
    assert parse_qs(urlsplit(hit.path).query) == {"q": ["asyncio tutorial"], "format": ["json"]}
    assert hit.headers["authorization"] == "Bearer search-key"
    assert not any("dapi-provider-secret" in value for value in hit.headers.values())


def test_web_search_sends_no_authorization_without_a_key_and_keeps_endpoint_parameters(
        make_ctx: Any, searx: LocalSite) -> None:
    search(make_ctx, {"query": "x"}, web_search_endpoint=searx.url("/search?language=en"))
    [hit] = searx.hits
    assert "authorization" not in hit.headers
    assert parse_qs(urlsplit(hit.path).query) == {"language": ["en"], "q": ["x"], "format": ["json"]}


@pytest.mark.parametrize(("args", "urls"), [
    ({"allowed_domains": ["python.org"]},
     ["https://docs.python.org/3/library/asyncio.html", "https://www.python.org/"]),
    ({"blocked_domains": ["example.com"]},
     ["https://docs.python.org/3/library/asyncio.html", "https://www.python.org/"]),
    ({"allowed_domains": ["example.com"], "blocked_domains": ["blog.example.com"]}, ["https://example.com/async"]),
    ({"max_results": 2}, ["https://docs.python.org/3/library/asyncio.html", "https://example.com/async"]),
    ({"limit": 1}, ["https://docs.python.org/3/library/asyncio.html"]),
])
def test_search_results_are_filtered_by_domain_and_counted(searx: LocalSite, make_ctx: Any, args: dict[str, Any],
                                                           urls: list[str]) -> None:
    config = make_ctx(web_search_endpoint=searx.url("/search")).config
    with requests.Session() as session:
        results = search_results(config, "asyncio tutorial", session=session,
                                 max_results=args.get("max_results", args.get("limit", 5)),
                                 allowed_domains=args.get("allowed_domains", ()),
                                 blocked_domains=args.get("blocked_domains", ()))
    assert [result["url"] for result in results] == urls
    text = search(make_ctx, {"query": "asyncio tutorial", **args}, web_search_endpoint=searx.url("/search"))
    assert [line.strip() for line in text.splitlines() if line.startswith("   https://")] == urls


def test_search_results_are_title_url_snippet_dicts(searx: LocalSite, make_ctx: Any) -> None:
    config = make_ctx(web_search_endpoint=searx.url("/search")).config
    assert search_results(config, "q", max_results=1) == [{
        "title": "asyncio docs", "url": "https://docs.python.org/3/library/asyncio.html",
        "snippet": "asyncio is a library to write concurrent code"}]


def test_no_results_say_so(make_ctx: Any, searx: LocalSite) -> None:
    searx.pages["/search"] = make_page('{"results": []}', "application/json")
    assert search(make_ctx, {"query": "zzz"}, web_search_endpoint=searx.url("/search")) == "No results for 'zzz'."


def test_an_unset_endpoint_says_what_to_set(make_ctx: Any) -> None:
    with pytest.raises(SearchError, match="set WEB_SEARCH_ENDPOINT"):
        search(make_ctx, {"query": "anything"})


def test_an_endpoint_that_is_down_is_a_clear_error(make_ctx: Any) -> None:
    with LocalSite() as closed:
        endpoint = closed.url("/search")
    with pytest.raises(SearchError, match=r"could not be reached \(ConnectionError\)"):
        search(make_ctx, {"query": "x"}, web_search_endpoint=endpoint)


@pytest.mark.parametrize(("page", "message"), [
    (make_page("boom", "text/plain", status=500), "answered HTTP 500"),
    (make_page("forbidden", "text/plain", status=403), "add json to search.formats"),
    (make_page("<html>not json</html>"), "did not answer JSON"),
    (make_page("[1, 2]", "application/json"), "did not answer a JSON object"),
])
def test_endpoint_failures_are_search_errors(make_ctx: Any, searx: LocalSite, page: Page, message: str) -> None:
    searx.pages["/search"] = page
    with pytest.raises(SearchError, match=message):
        search(make_ctx, {"query": "x"}, web_search_endpoint=searx.url("/search"))


def test_an_endpoint_slower_than_the_timeout_is_a_search_error(make_ctx: Any, searx: LocalSite) -> None:
    searx.pages["/search"] = lambda handler: None if searx.stopping.wait(5) else handler.reply(200, b"{}")
    with pytest.raises(SearchError, match="did not answer within 300 ms"):
        search(make_ctx, {"query": "x"}, web_search_endpoint=searx.url("/search"), web_search_timeout_ms=300)


@pytest.mark.parametrize(("args", "message"), [
    ({}, "missing required argument 'query'"),
    ({"query": "  "}, "must not be empty"),
    ({"query": "x", "allowed_domains": "python.org"}, "must be a list of domain names"),
    ({"query": "x", "max_results": 0}, "must be at least 1"),
])
def test_bad_search_arguments_are_refused(make_ctx: Any, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        search(make_ctx, args, web_search_endpoint="http://127.0.0.1:9/search")


# -- the tool definitions -------------------------------------------------------------------------

def test_web_tools_duplicate_claude_codes_tools() -> None:
    assert [(tool.name, tool.duplicates) for tool in WEB_TOOLS] == [
        ("web_fetch", ("WebFetch",)), ("web_search", ("WebSearch",))]
    assert WEB_TOOLS[0].definition()["input_schema"]["required"] == ["url"]
    assert WEB_TOOLS[1].definition()["input_schema"]["required"] == ["query"]
