from __future__ import annotations

import pytest
from flask import Request, Response
from werkzeug.test import EnvironBuilder

from app.accounting.auth import KeyChecker, key_id
from app.web import signin
from app.web.signin import Viewer

ADMIN = "sk-admin-0123456789"
CLIENT = "sk-client-0123456789"
TOKEN = "t" * 43


def make_request(*, remote: str = "127.0.0.1", cookies: dict[str, str] | None = None,
                 form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Request:
    builder = EnvironBuilder(method="POST" if form is not None else "GET", data=form,
                             environ_base={"REMOTE_ADDR": remote}, headers=headers)
    for name, value in (cookies or {}).items():
        builder.headers.add("Cookie", f"{name}={value}")
    return Request(builder.get_environ())


KEYS = KeyChecker([CLIENT], [ADMIN])
OPEN = KeyChecker([], [])


def test_a_signed_in_admin_key_is_an_admin_viewer() -> None:
    viewer = signin.current_viewer(make_request(cookies={signin.KEY_COOKIE: ADMIN}), KEYS)
    assert viewer == Viewer(key_id=key_id(ADMIN), admin=True)
    assert not viewer.open_mode


def test_a_client_key_is_not_an_admin() -> None:
    assert signin.current_viewer(make_request(cookies={signin.KEY_COOKIE: CLIENT}), KEYS) == \
        Viewer(key_id=key_id(CLIENT), admin=False)


@pytest.mark.parametrize("cookies", [{}, {signin.KEY_COOKIE: "sk-wrong"}])
def test_no_or_a_wrong_key_must_sign_in(cookies: dict[str, str]) -> None:
    with pytest.raises(signin.SignInRequired):
        signin.current_viewer(make_request(cookies=cookies), KEYS)


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"])
def test_without_keys_a_loopback_client_is_an_admin(remote: str) -> None:
    viewer = signin.current_viewer(make_request(remote=remote), OPEN)
    assert viewer == Viewer(key_id=None, admin=True)
    assert viewer.open_mode


@pytest.mark.parametrize("remote", ["10.0.0.5", "192.168.1.2", "2001:db8::1", ""])
def test_without_keys_other_addresses_are_refused(remote: str) -> None:
    with pytest.raises(signin.RemoteOpenAccess):
        signin.current_viewer(make_request(remote=remote), OPEN)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
def test_without_keys_a_request_a_local_proxy_forwarded_is_refused(header: str) -> None:
    with pytest.raises(signin.RemoteOpenAccess):
        signin.current_viewer(make_request(headers={header: "203.0.113.9"}), OPEN)


def test_sign_in_checks_the_key() -> None:
    assert signin.sign_in(f"  {ADMIN}\n", KEYS).admin
    with pytest.raises(signin.InvalidKey):
        signin.sign_in("sk-nope", KEYS)
    with pytest.raises(signin.InvalidKey):
        signin.sign_in("anything", OPEN)


def test_the_sign_in_cookie_is_http_only_strict_and_scoped() -> None:
    response = Response()
    signin.remember_key(response, ADMIN, secure=True)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{signin.KEY_COOKIE}={ADMIN};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Secure", "Max-Age=43200"):
        assert attribute in cookie


def test_a_matching_csrf_token_passes() -> None:
    signin.check_csrf(make_request(cookies={signin.CSRF_COOKIE: TOKEN}, form={signin.CSRF_FIELD: TOKEN}))


@pytest.mark.parametrize(("cookie", "posted"), [(TOKEN, "u" * 43), (TOKEN, ""), ("", ""), ("short", "short")])
def test_a_missing_or_different_csrf_token_is_refused(cookie: str, posted: str) -> None:
    with pytest.raises(signin.CsrfMismatch):
        signin.check_csrf(make_request(cookies={signin.CSRF_COOKIE: cookie}, form={signin.CSRF_FIELD: posted}))


def test_the_csrf_token_is_kept_or_made() -> None:
    assert signin.csrf_token(make_request(cookies={signin.CSRF_COOKIE: TOKEN})) == TOKEN
    made = signin.csrf_token(make_request())
    assert len(made) == 43
    assert made != signin.csrf_token(make_request())
