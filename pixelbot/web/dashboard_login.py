"""The dashboard's login: the form (plain HTML, it works without JavaScript), the password
and one-time-link logins, and the cookies they set. The rules (hashing, limits, tokens) are
``auth.py``'s; this is their HTTP face. Every route here is public (named ``public:...``):
it is how one gets a session.
"""

from __future__ import annotations

import html
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from pixelbot.web.auth import DashboardAuth, Session, clean_operator_name

__all__ = [
    "LOGIN_COOKIE",
    "PREFIX",
    "SECURE_COOKIES",
    "SESSION_COOKIE",
    "asset",
    "login_routes",
    "secure_cookies",
    "see_other",
]

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
SESSION_COOKIE = "pixelbot_session"
LOGIN_COOKIE = "pixelbot_login"
# ``web.secure_cookies``, kept on the dashboard's application by ``build_dashboard``.
SECURE_COOKIES = web.AppKey("secure_cookies", bool)


def secure_cookies(request: web.Request) -> bool:
    """Mark the cookies Secure: ``web.secure_cookies`` is on, or the request came over HTTPS.
    Behind a TLS reverse proxy the bot sees plain HTTP (nothing here trusts a forwarded
    header), so there only the setting can say so."""
    return request.config_dict.get(SECURE_COOKIES, False) or request.secure


def asset(name: str) -> bytes:
    """A file of ``pixelbot/web/static/dashboard/``."""
    return resources.files("pixelbot.web").joinpath("static", "dashboard", name).read_bytes()


def _login_page(
    auth: DashboardAuth,
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    token: str = "",
    name: str = "",
) -> web.Response:
    """The login form (a plain form: it works without JavaScript)."""
    cookie, form_token = auth.login_form_token()
    with_link = not auth.uses_password
    template = asset("login.html").decode("utf-8")
    if with_link and not token:
        form = (
            '<p class="hint">This dashboard has no password. Use the one-time link the bot '
            "printed when it started.</p>"
        )
    else:
        secret = (
            f'<input type="hidden" name="token" value="{html.escape(token)}">'
            if with_link
            else '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password" required>'
        )
        action = f"{PREFIX}/login/link" if with_link else f"{PREFIX}/login"
        form = (
            f'<form method="post" action="{action}">'
            f'<input type="hidden" name="csrf" value="{html.escape(form_token)}">'
            '<label for="name">Your name</label>'
            f'<input id="name" name="name" maxlength="32" autocomplete="username" required '
            f'value="{html.escape(name)}">'
            f"{secret}"
            '<button type="submit">Log in</button></form>'
        )
    body = template.replace("{{error}}", html.escape(error)).replace("{{form}}", form)
    response = web.Response(text=body, content_type="text/html", status=status)
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
        max_age=int(auth.login_form_lifetime.total_seconds()),
    )
    return response


def see_other(location: str) -> web.Response:
    """A redirect that can carry cookies (an HTTPException may not be returned)."""
    return web.Response(status=303, headers={"Location": location})


def _client(request: web.Request) -> str:
    """Who the login limit counts: the address, or for IPv6 its /64 (one machine gets a whole
    /64 to pick addresses from)."""
    remote = request.remote or "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return remote


async def _login_form(request: web.Request, auth: DashboardAuth) -> tuple[str, Any] | None:
    """The posted (name, form) if the form's own CSRF token holds, else None."""
    form = await request.post()
    if not auth.login_form_ok(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf", ""))):
        return None
    return str(form.get("name", "")), form


def _logged_in(auth: DashboardAuth, request: web.Request, session: Session) -> web.Response:
    response = see_other(f"{PREFIX}/")
    response.set_cookie(
        SESSION_COOKIE,
        auth.cookie_for(session),
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
        max_age=int(auth.lifetime.total_seconds()),
    )
    response.del_cookie(LOGIN_COOKIE, path=PREFIX, secure=secure_cookies(request) or None)
    return response


def _too_many(
    auth: DashboardAuth, request: web.Request, retry_after: float, name: str
) -> web.Response:
    minutes = max(1, round(retry_after / 60))
    response = _login_page(
        auth,
        request,
        status=429,
        error=f"Too many tries. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        name=name,
    )
    response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def login_routes(
    auth: DashboardAuth, link_used: Callable[[], Awaitable[None]]
) -> list[web.RouteDef]:
    """The login routes; ``link_used`` runs after a one-time link opened a session."""

    async def login_page(request: web.Request) -> web.Response:
        if auth.session_for(request.cookies.get(SESSION_COOKIE)) is not None:
            raise web.HTTPSeeOther(f"{PREFIX}/")
        return _login_page(auth, request)

    async def login(request: web.Request) -> web.Response:
        posted = await _login_form(request, auth)
        if posted is None:
            return _login_page(auth, request, status=403, error="The form expired. Try again.")
        raw_name, form = posted
        name = clean_operator_name(raw_name)
        if name is None:
            return _login_page(
                auth, request, status=400, error="Give your name (up to 32 letters)."
            )
        if not auth.uses_password:
            return _login_page(auth, request, status=403, error="Use the one-time link.")
        result = await auth.login_with_password(
            _client(request), name, str(form.get("password", ""))
        )
        if result.throttled:
            return _too_many(auth, request, result.retry_after, name)
        if result.session is None:
            log.warning("dashboard: a wrong password from %s", _client(request))
            return _login_page(auth, request, status=401, error="Wrong password.", name=name)
        log.info("dashboard: %s logged in from %s", name, _client(request))
        return _logged_in(auth, request, result.session)

    async def link_page(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        if auth.uses_password or not auth.link_valid(token):
            return _login_page(
                auth,
                request,
                status=401,
                error="This link was used already or is out of date.",
            )
        return _login_page(auth, request, token=token)

    async def link_login(request: web.Request) -> web.Response:
        posted = await _login_form(request, auth)
        if posted is None:
            return _login_page(auth, request, status=403, error="The form expired. Try again.")
        raw_name, form = posted
        token = str(form.get("token", ""))
        name = clean_operator_name(raw_name)
        if name is None:
            return _login_page(
                auth,
                request,
                status=400,
                error="Give your name (up to 32 letters).",
                token=token,
            )
        result = auth.login_with_link(_client(request), name, token)
        if result.throttled:
            return _too_many(auth, request, result.retry_after, name)
        if result.session is None:
            return _login_page(
                auth,
                request,
                status=401,
                error="This link was used already or is out of date.",
            )
        log.info("dashboard: %s logged in with the one-time link", name)
        await link_used()  # the next person needs a fresh one
        return _logged_in(auth, request, result.session)

    async def login_css(request: web.Request) -> web.Response:
        return web.Response(body=asset("login.css"), content_type="text/css")

    return [
        web.get("/login", login_page, name="public:login"),
        web.post("/login", login, name="public:login-post"),
        web.get("/login/link", link_page, name="public:link"),
        web.post("/login/link", link_login, name="public:link-post"),
        web.get("/login.css", login_css, name="public:login-css"),
    ]
