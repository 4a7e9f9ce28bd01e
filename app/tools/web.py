"""The web tools: ``web_fetch`` (one page as text) and ``web_search`` (a SearXNG-style endpoint).

``web_fetch`` vets the URL of every hop (the first and each redirect) with
:class:`~app.tools.netguard.URLGuard`, connects through a :class:`~app.tools.netguard.PinnedAdapter`
to the address it vetted, reads at most ``max_body_bytes`` within ``WEB_SEARCH_TIMEOUT_MS``, and
sends no credentials, proxies or ``.netrc`` logins. ``web_search`` asks the operator's endpoint,
which is trusted (it may be on a private address); :func:`search_results` also serves Claude Code's
server-side WebSearch. Refusals are :class:`~app.tools.netguard.BlockedURLError` and search
failures :class:`SearchError`, both :class:`~app.tools.base.ToolError`.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.cookies import RequestsCookieJar

from app.config import Config
from app.tools.base import Tool, ToolContext, ToolError, int_arg, str_arg, truncate
from app.tools.netguard import PinnedAdapter, Resolver, Target, URLGuard

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 2 * 1024 * 1024
USER_AGENT = "Mozilla/5.0 (compatible; Lynkr web tools)"
_CHUNK = 64 * 1024
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {"application/json", "application/xml", "application/javascript", "application/x-javascript",
               "application/ecmascript", "application/x-ndjson", "application/yaml", "application/x-yaml"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", re.IGNORECASE)


class SearchError(ToolError):
    """Web search is not configured, or its endpoint failed; the message says which."""


# -- HTML to text ---------------------------------------------------------------------------------

_SKIPPED = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
            "nav", "footer", "aside", "head"}
_BLOCKS = {"p", "div", "section", "article", "main", "header", "blockquote", "ul", "ol", "dl", "dt", "dd",
           "table", "figure", "figcaption", "hr", "form", "fieldset", "details", "summary", "address"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BREAKS = {"li": "\n- ", "br": "\n", "tr": "\n"}


class _TextExtractor(HTMLParser):
    """Collects a page's title and readable text: headings marked, one list item a line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.parts: list[str] = [""]
        self._skipping = 0
        self._title_state = "before"  # "in" while reading the first <title>, then "done"
        self._in_pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._title_state == "before":
            self._title_state = "in"
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in _BREAKS:
            self.parts.append(_BREAKS[tag])
        elif tag in {"td", "th"} and not self._at_space():
            self.parts.append(" ")
        elif tag == "pre":
            self._in_pre += 1
            self.parts.append("\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title_state == "in":
            self._title_state = "done"
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag == "pre":
            self._in_pre = max(0, self._in_pre - 1)
        if tag in _BLOCKS or tag in _HEADINGS or tag == "pre":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._title_state == "in":
            self.title.append(data)
        elif self._in_pre and not self._skipping:
            self.parts.append(data)
        elif not self._skipping:
            text = re.sub(r"\s+", " ", data)
            self.parts.append(text.lstrip() if self._at_space() else text)

    def _at_space(self) -> bool:
        return self.parts[-1][-1:] in {"", " ", "\n"}


def html_to_text(html: str) -> str:
    """Readable text of an HTML page: its title first, then headings, paragraphs and list items."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    body = re.sub(r"[ \t]+\n", "\n", "".join(extractor.parts))
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    title = " ".join("".join(extractor.title).split())
    return f"{title}\n\n{body}".strip() if title else body


# -- fetching -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Reply:
    """One hop's answer: a redirect's location, or the (possibly cut) body of the page."""

    content_type: str
    location: str | None
    body: bytes = b""
    cut: bool = False


class _Deadline:
    """The time one fetch may take, shared by its hops and body reads."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.ends = time.monotonic() + timeout_ms / 1000

    def left(self) -> float:
        """Seconds left; raises :class:`ToolError` when none are."""
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise ToolError(f"the fetch took longer than {self.timeout_ms} ms (WEB_SEARCH_TIMEOUT_MS)")
        return remaining


def fetch_text(config: Config, url: str, *, resolver: Resolver = socket.getaddrinfo,
               max_body_bytes: int = MAX_BODY_BYTES) -> str:
    """The page at ``url`` as text, redirects followed; raises :class:`ToolError` on any refusal."""
    guard = URLGuard.from_config(config, resolver)
    deadline = _Deadline(config.web_search_timeout_ms)
    jar = RequestsCookieJar()
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        reply = _get(current, guard.check(current), jar, deadline, max_body_bytes)
        if reply.location is None:
            return _page_text(url, current, reply, max_body_bytes)
        current = urljoin(current, reply.location)
    raise ToolError(f"{url} redirected more than {MAX_REDIRECTS} times")


def _get(url: str, target: Target, jar: RequestsCookieJar, deadline: _Deadline, cap: int) -> _Reply:
    """One GET of ``url``, connected to the first of the target's vetted addresses that answers."""
    *others, last = target.addresses
    with _translated(url, deadline):
        for address in others:
            with suppress(requests.ConnectionError):  # another address may answer (IPv6 without a route)
                return _get_from(url, target, address, jar, deadline, cap)
        return _get_from(url, target, last, jar, deadline, cap)


def _get_from(url: str, target: Target, address: str, jar: RequestsCookieJar, deadline: _Deadline,
              cap: int) -> _Reply:
    with requests.Session() as session:
        session.trust_env = False  # no proxies, no .netrc logins, no CA bundle from the environment
        session.cookies = jar
        adapter = PinnedAdapter(target, address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with session.get(url, stream=True, allow_redirects=False, timeout=deadline.left(),
                         headers={"User-Agent": USER_AGENT, "Accept": "*/*"}) as response:
            return _reply(response, deadline, cap)


def _reply(response: requests.Response, deadline: _Deadline, cap: int) -> _Reply:
    """What ``response`` says; the body is read (up to ``cap`` bytes) only for a final answer."""
    content_type = response.headers.get("Content-Type", "")
    if response.is_redirect:
        return _Reply(content_type, response.headers["Location"])
    if not response.ok:
        raise ToolError(f"{response.url} answered HTTP {response.status_code} {response.reason or ''}".rstrip())
    body = bytearray()
    # read1 returns after one socket read, so a slow drip cannot outlast the deadline
    while chunk := response.raw.read1(_CHUNK, decode_content=True):
        body.extend(chunk)
        if len(body) > cap:
            return _Reply(content_type, None, bytes(body[:cap]), cut=True)
        deadline.left()
    return _Reply(content_type, None, bytes(body))


@contextmanager
def _translated(url: str, deadline: _Deadline) -> Iterator[None]:
    """Turn requests' and urllib3's exceptions into one-sentence :class:`ToolError` messages."""
    try:
        yield
    except (requests.Timeout, urllib3.exceptions.ReadTimeoutError) as exc:
        raise ToolError(f"fetching {url} timed out after {deadline.timeout_ms} ms") from exc
    except requests.exceptions.SSLError as exc:
        raise ToolError(f"fetching {url} failed: TLS certificate or handshake error") from exc
    except (requests.ConnectionError, urllib3.exceptions.ProtocolError) as exc:
        raise ToolError(f"fetching {url} failed: could not connect or the connection broke") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise ToolError(f"fetching {url} failed: {type(exc).__name__}") from exc


def _page_text(url: str, final_url: str, reply: _Reply, cap: int) -> str:
    """The text of a final answer; a non-text body is a :class:`ToolError`."""
    media_type = reply.content_type.split(";")[0].strip().lower()
    text = _decode(reply.body, reply.content_type, html=media_type in _HTML_TYPES)
    if media_type in _HTML_TYPES:
        text = html_to_text(text)
    elif not _is_text(media_type, reply.body):
        raise ToolError(f"{final_url} is {media_type or 'binary data'}, not text; web_fetch reads text pages only")
    notes = [f"[redirected to {final_url}]"] if final_url != url else []
    if reply.cut:
        notes.append(f"[page larger than {cap} bytes: only the first {cap} bytes were read]")
    return "\n\n".join([*notes, text])


def _is_text(media_type: str, body: bytes) -> bool:
    if not media_type:
        return b"\x00" not in body[:1024]
    return (media_type.startswith("text/") or media_type in _TEXT_TYPES
            or media_type.endswith(("+json", "+xml")))


def _decode(body: bytes, content_type: str, *, html: bool) -> str:
    """``body`` decoded by its declared charset (header, then ``<meta>``), else UTF-8."""
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    declared = match.group(1) if match else None
    if declared is None and html:
        meta = _META_CHARSET.search(body[:4096])
        declared = meta.group(1).decode("ascii") if meta else None
    try:
        return body.decode(declared or "utf-8", errors="replace").removeprefix("\ufeff")
    except LookupError:
        return body.decode("utf-8", errors="replace").removeprefix("\ufeff")


# -- searching ------------------------------------------------------------------------------------

def search_results(config: Config, query: str, *, max_results: int = 5, allowed_domains: Sequence[str] = (),
                   blocked_domains: Sequence[str] = (), session: requests.Session | None = None
                   ) -> list[dict[str, str]]:
    """Results ``{"title", "url", "snippet"}`` from ``WEB_SEARCH_ENDPOINT``, filtered by domain.

    Raises :class:`SearchError` when the endpoint is unset, unreachable, or answers an error or
    something that is not SearXNG JSON.
    """
    payload = _ask_endpoint(config, query, session)
    allowed = [_domain(entry) for entry in allowed_domains]
    blocked = [_domain(entry) for entry in blocked_domains]
    results = (_result(item) for item in payload.get("results") or [] if isinstance(item, Mapping))
    kept = [result for result in results if result is not None
            and (not allowed or _matches(result["url"], allowed)) and not _matches(result["url"], blocked)]
    return kept[:max_results]


def _ask_endpoint(config: Config, query: str, session: requests.Session | None) -> Mapping[str, Any]:
    if not config.web_search_endpoint:
        raise SearchError("web search is off: set WEB_SEARCH_ENDPOINT to a SearXNG JSON search URL")
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if config.web_search_api_key:
        headers["Authorization"] = f"Bearer {config.web_search_api_key}"
    http = session or requests.Session()
    try:
        with http.get(config.web_search_endpoint, params={"q": query, "format": "json"}, headers=headers,
                      timeout=config.web_search_timeout_ms / 1000) as response:
            return _search_payload(response)
    except requests.Timeout as exc:
        raise SearchError(f"the search endpoint did not answer within {config.web_search_timeout_ms} ms") from exc
    except requests.RequestException as exc:
        raise SearchError(f"the search endpoint could not be reached ({type(exc).__name__})") from exc
    finally:
        if session is None:
            http.close()


def _search_payload(response: requests.Response) -> Mapping[str, Any]:
    if response.status_code == 403:  # SearXNG answers 403 to format=json unless search.formats lists json
        raise SearchError("the search endpoint answered HTTP 403 (for SearXNG, add json to search.formats)")
    if not response.ok:
        raise SearchError(f"the search endpoint answered HTTP {response.status_code}")
    try:
        payload = response.json()
    except ValueError as exc:
        raise SearchError("the search endpoint did not answer JSON") from exc
    if not isinstance(payload, Mapping):
        raise SearchError("the search endpoint did not answer a JSON object")
    return payload


def _result(item: Mapping[str, Any]) -> dict[str, str] | None:
    url = item.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in {"http", "https"}:
        return None
    snippet = item.get("content") or item.get("snippet") or ""
    return {"title": _one_line(item.get("title")) or url, "url": url, "snippet": _one_line(snippet)}


def _one_line(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _domain(entry: str) -> str:
    return entry.strip().lower().removeprefix("*.").strip(".")


def _matches(url: str, domains: Sequence[str]) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".")
    return any(domain and (host == domain or host.endswith("." + domain)) for domain in domains)


def format_results(query: str, results: Sequence[Mapping[str, str]]) -> str:
    """A numbered list of results (title, URL, snippet), as the model reads it."""
    if not results:
        return f"No results for {query!r}."
    blocks = []
    for number, result in enumerate(results, start=1):
        lines = [f"{number}. {result['title']}", f"   {result['url']}"]
        if result.get("snippet"):
            lines.append(f"   {result['snippet']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# -- the tools ------------------------------------------------------------------------------------

def _domains_arg(args: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = args.get(name) or ()
    if isinstance(value, str) or not all(isinstance(entry, str) for entry in value):
        raise ToolError(f"argument '{name}' must be a list of domain names")
    return tuple(value)


def _run_search(ctx: ToolContext, args: dict[str, Any]) -> str:
    query = str_arg(args, "query", required=True) or ""
    if not query.strip():
        raise ToolError("argument 'query' must not be empty")
    limit = min(int_arg(args, "max_results", "limit", default=5, minimum=1) or 5, 20)
    results = search_results(ctx.config, query, max_results=limit,
                             allowed_domains=_domains_arg(args, "allowed_domains"),
                             blocked_domains=_domains_arg(args, "blocked_domains"))
    return format_results(query, results)


def make_web_fetch(resolver: Resolver = socket.getaddrinfo, max_body_bytes: int = MAX_BODY_BYTES) -> Tool:
    """The ``web_fetch`` tool, resolving host names with ``resolver``."""

    def run(ctx: ToolContext, args: dict[str, Any]) -> str:
        url = (str_arg(args, "url", required=True) or "").strip()
        limit = ctx.config.web_fetch_body_preview_max
        wanted = int_arg(args, "max_chars", minimum=1)
        limit = min(limit, wanted) if limit and wanted else (wanted or limit)
        return truncate(fetch_text(ctx.config, url, resolver=resolver, max_body_bytes=max_body_bytes), limit)

    return Tool(
        name="web_fetch",
        description=("Fetch one public http(s) web page and return it as readable text (HTML converted; "
                     "plain text and JSON as they are). Redirects are followed; private and local "
                     "addresses are refused."),
        input_schema={"type": "object", "properties": {
            "url": {"type": "string", "description": "the http or https URL to fetch"},
            "max_chars": {"type": "integer", "minimum": 1, "description": "longest text to return"},
        }, "required": ["url"]},
        run=run, duplicates=("WebFetch",),
    )


WEB_SEARCH = Tool(
    name="web_search",
    description="Search the web; returns a numbered list of results with title, URL and snippet.",
    input_schema={"type": "object", "properties": {
        "query": {"type": "string", "description": "what to search for"},
        "max_results": {"type": "integer", "minimum": 1, "maximum": 20, "description": "results to return (5)"},
        "allowed_domains": {"type": "array", "items": {"type": "string"},
                            "description": "only return results from these domains"},
        "blocked_domains": {"type": "array", "items": {"type": "string"},
                            "description": "never return results from these domains"},
    }, "required": ["query"]},
    run=_run_search, duplicates=("WebSearch",),
)

WEB_TOOLS: tuple[Tool, ...] = (make_web_fetch(), WEB_SEARCH)
