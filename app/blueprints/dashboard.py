"""The dashboard at ``/dashboard``: overview, sessions with transcripts, and keys.

Server-rendered Jinja pages and SVG charts, with the stylesheet served from the package (no
CDN, no script). Access is decided by :mod:`app.web.signin`: the overview and the keys page
are for admin keys, the sessions pages show a key its own sessions (an admin all of them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from app.accounting.keys import create_key, list_keys, revoke_key
from app.metrics.recorder import metrics_of
from app.metrics.summary import observability
from app.web import charts, overview, signin
from app.web.services import services
from app.web.signin import Viewer
from app.web.transcript import block_text, list_sessions, load_transcript

WEB = Path(__file__).resolve().parent.parent / "web"
bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder=str(WEB / "templates"),
               static_folder=str(WEB / "static"), static_url_path="/static")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@bp.before_request
def _identify() -> None:
    g.csrf = signin.csrf_token(request)
    if request.method == "POST":
        signin.check_csrf(request)
    if request.endpoint not in ("dashboard.sign_in", "dashboard.static"):
        g.viewer = signin.current_viewer(request, services().keys)


@bp.after_request
def _protect(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if "csrf" in g:
        signin.keep_csrf(response, g.csrf, secure=request.is_secure)
    return response


@bp.errorhandler(signin.SignInRequired)
def _to_sign_in(_: Exception) -> BaseResponse:
    response = redirect(url_for("dashboard.sign_in"))
    signin.forget_key(response)
    return response


@bp.errorhandler(signin.AdminRequired)
def _not_admin(_: Exception) -> tuple[str, int]:
    return _page("denied.html", reason="This page is for admin keys."), 403


@bp.errorhandler(signin.RemoteOpenAccess)
def _remote(_: Exception) -> tuple[str, int]:
    return _page("denied.html", reason="No API key is configured, so the dashboard answers only on the "
                                       "loopback interface. Set LYNKR_ADMIN_KEYS to use it from elsewhere."), 403


@bp.errorhandler(signin.CsrfMismatch)
def _csrf(_: Exception) -> tuple[str, int]:
    return _page("denied.html", reason="The form was stale or came from another site; reload and try again."), 403


@bp.errorhandler(NotFound)
def _not_found(error: NotFound) -> tuple[str, int]:
    return _page("denied.html", reason=error.description or "Not found."), 404


@bp.get("/signin")
@bp.post("/signin")
def sign_in() -> Any:
    """The sign-in form; a valid key sets the cookie and goes to the dashboard."""
    keys = services().keys
    if not keys.enabled:
        return redirect(url_for("dashboard.home"))
    if request.method == "GET":
        return _page("signin.html", error=None)
    key = request.form.get("key", "")
    try:
        viewer = signin.sign_in(key, keys)
    except signin.InvalidKey:
        return _page("signin.html", error="That key is not valid."), 401
    response = redirect(url_for("dashboard.home" if viewer.admin else "dashboard.sessions"))
    signin.remember_key(response, key, secure=request.is_secure)
    return response


@bp.post("/signout")
def sign_out() -> BaseResponse:
    """Forget the key and go back to the sign-in form."""
    response = redirect(url_for("dashboard.sign_in"))
    signin.forget_key(response)
    return response


@bp.get("/")
def home() -> Any:
    """The overview (admins); other keys go to their sessions."""
    if not _viewer().admin:
        return redirect(url_for("dashboard.sessions"))
    config = services().config
    now = datetime.now(UTC)
    window = request.args.get("window", "24h")
    window = window if window in overview.WINDOWS else "24h"
    since = overview.window_start(window, now)
    names = overview.key_names(config)
    summary = observability(metrics_of().collect())
    groups = overview.usage_groups(since, names)
    latency = summary["latency"]
    return _page(
        "overview.html", window=window, windows=list(overview.WINDOWS), summary=summary,
        metrics_enabled=config.metrics_enabled, groups=groups,
        breakers=services().breakers.snapshots(), budgets=overview.budget_use(config, now, names),
        cache_rate=overview.cache_hit_rate(summary),
        traffic_chart=charts.time_columns(overview.traffic(since, now)),
        latency_chart=charts.bars([(q, latency[f"{q}_ms"] or 0.0) for q in ("p50", "p95", "p99")],
                                  fmt=lambda v: f"{v:,.0f} ms", title="latency percentiles"),
        cost_provider_chart=_money_bars(overview.totals_by(groups, "provider"), "cost by provider"),
        cost_model_chart=_money_bars(overview.totals_by(groups, "model"), "cost by model"),
        cost_key_chart=_money_bars(overview.totals_by(groups, "key"), "cost by key"),
        tokens_model_chart=charts.bars(overview.tokens_by(groups, "model"), title="tokens by model"),
        reasons_chart=charts.bars(list(summary["routing"]["by_reason"].items()), title="routing reasons"),
        fallback_chart=charts.bars(list(summary["fallback"]["reasons"].items()), css="bar-error",
                                   title="fallback reasons"),
        cache_meter=charts.meter(overview.cache_hit_rate(summary), title="cache hit rate"),
        meter=charts.meter,
    )


@bp.get("/sessions")
def sessions() -> str:
    """The newest sessions the viewer may read."""
    viewer = _viewer()
    names = overview.key_names(services().config)
    rows = list_sessions(None if viewer.admin else viewer.key_id, names)
    return _page("sessions.html", rows=rows)


@bp.get("/sessions/<session_id>")
def session(session_id: str) -> str:
    """One session's transcript, its server tools and its cost."""
    viewer = _viewer()
    names = overview.key_names(services().config)
    transcript = load_transcript(session_id, names)
    if transcript is None or not (viewer.admin or transcript.owner_id == viewer.key_id):
        raise NotFound(f"No session {session_id!r}.")
    return _page("session.html", t=transcript, block_text=block_text)


@bp.get("/keys")
def keys() -> str:
    """Stored keys (admins)."""
    _require_admin()
    return _page("keys.html", keys=list_keys(), created=None, error=None)


@bp.post("/keys")
def create() -> Any:
    """Create a key and show it once."""
    _require_admin()
    # Without any key yet, the first one must be an admin key: once it exists every page needs one.
    admin = request.form.get("admin") == "on" or _viewer().open_mode
    try:
        row, key = create_key(request.form.get("name", ""), admin=admin)
    except ValueError as exc:
        return _page("keys.html", keys=list_keys(), created=None, error=str(exc)), 400
    created = {"name": row.name, "key": key, "admin": bool(row.admin)}
    return _page("keys.html", keys=list_keys(), created=created, error=None)


@bp.post("/keys/<int:key_row>/revoke")
def revoke(key_row: int) -> BaseResponse:
    """Revoke a stored key (seen by every worker within the key cache's TTL)."""
    _require_admin()
    revoke_key(str(key_row))
    return redirect(url_for("dashboard.keys"))


def _viewer() -> Viewer:
    return g.viewer


def _require_admin() -> None:
    if not _viewer().admin:
        raise signin.AdminRequired


def _money_bars(items: list[tuple[str, float]], title: str) -> Any:
    return charts.bars(items, fmt=lambda v: f"${v:,.4f}", title=title)


def _page(template: str, **context: Any) -> str:
    return render_template(f"dashboard/{template}", viewer=g.get("viewer"), csrf=g.csrf,
                           csrf_field=signin.CSRF_FIELD, **context)
