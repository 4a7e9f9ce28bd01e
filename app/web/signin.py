"""Who is looking at the dashboard: sign-in with an API key, the cookies, and CSRF tokens.

Signing in checks the key once through the gateway's :class:`~app.accounting.auth.KeyChecker`
and keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie scoped to ``/dashboard``; every
page checks it again, so a revoked key signs its browser out within the key cache's TTL. The
key itself is the cookie's value because gunicorn workers share no secret to sign a session
with; the cookie is never readable by scripts nor sent to another path or site.

With no key configured or stored (the loopback default) the gateway lets every client through,
so the dashboard does the same for clients on the loopback interface only, as an admin, and
refuses every other address and every request a reverse proxy forwarded.

Every form carries a CSRF token: a random value kept in its own ``SameSite=Strict`` cookie,
which a POST must repeat in its ``csrf_token`` field (double submit).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from flask import Request
from werkzeug.wrappers import Response

from app.accounting.auth import KeyChecker
from app.errors import AuthenticationError

KEY_COOKIE = "lynkr_dashboard"
CSRF_COOKIE = "lynkr_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/dashboard"
SIGN_IN_MAX_AGE_S = 12 * 3600
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


class DashboardAccessError(Exception):
    """A dashboard request that may not be served as it is."""


class SignInRequired(DashboardAccessError):
    """No valid key in the cookie: the browser must sign in."""


class AdminRequired(DashboardAccessError):
    """The signed-in key is not an admin key, and the page is for admins."""


class RemoteOpenAccess(DashboardAccessError):
    """No key is configured and the client is not on the loopback interface."""


class InvalidKey(DashboardAccessError):
    """The key typed into the sign-in form is not a valid key."""


class CsrfMismatch(DashboardAccessError):
    """A form was posted without the CSRF token of this browser."""


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: a key id (None in open mode) and whether it may see admin pages."""

    key_id: str | None
    admin: bool

    @property
    def open_mode(self) -> bool:
        """True when no key is configured and the viewer is a loopback client."""
        return self.key_id is None


def current_viewer(request: Request, keys: KeyChecker) -> Viewer:
    """The viewer of ``request``; raises :class:`SignInRequired` or :class:`RemoteOpenAccess`."""
    if not keys.enabled:
        if not is_loopback(request.remote_addr) or _proxied(request):
            raise RemoteOpenAccess(request.remote_addr or "")
        return Viewer(key_id=None, admin=True)
    key = request.cookies.get(KEY_COOKIE)
    if not key:
        raise SignInRequired
    try:
        return _viewer_of(key, keys)
    except InvalidKey:
        raise SignInRequired from None


def sign_in(key: str, keys: KeyChecker) -> Viewer:
    """The viewer ``key`` makes; raises :class:`InvalidKey` unless it is a valid key."""
    key = key.strip()
    if not key or not keys.enabled:
        raise InvalidKey
    return _viewer_of(key, keys)


def _viewer_of(key: str, keys: KeyChecker) -> Viewer:
    try:
        key_id = keys.check({"x-api-key": key})
    except AuthenticationError:
        raise InvalidKey from None
    return Viewer(key_id=key_id, admin=key_id in keys.admin_ids)


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` is a loopback IP (127.0.0.0/8, ::1, or IPv4-mapped loopback)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _proxied(request: Request) -> bool:
    # A reverse proxy on the same host connects from loopback on behalf of anyone: a request it
    # forwarded says so in one of these headers, and is not treated as a local one.
    return any(name in request.headers for name in PROXY_HEADERS)


def remember_key(response: Response, key: str, *, secure: bool) -> None:
    """Set the sign-in cookie on ``response``."""
    response.set_cookie(KEY_COOKIE, key.strip(), max_age=SIGN_IN_MAX_AGE_S, path=COOKIE_PATH,
                        secure=secure, httponly=True, samesite="Strict")


def forget_key(response: Response) -> None:
    """Clear the sign-in cookie."""
    response.delete_cookie(KEY_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: the cookie's, or a new one (set it with :func:`keep_csrf`)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    return existing if _well_formed(existing) else secrets.token_urlsafe(32)


def keep_csrf(response: Response, token: str, *, secure: bool) -> None:
    """Set the CSRF cookie to ``token``."""
    response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict")


def check_csrf(request: Request) -> None:
    """Raise :class:`CsrfMismatch` unless the posted token equals the cookie's."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    posted = request.form.get(CSRF_FIELD, "")
    if not (_well_formed(cookie) and hmac.compare_digest(cookie.encode(), posted.encode())):
        raise CsrfMismatch


def _well_formed(token: str) -> bool:
    return 32 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
