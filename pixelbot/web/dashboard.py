"""The operator dashboard (``/dashboard``): pages, a JSON API and a live WebSocket, all behind
a login.

It is mounted as an aiohttp sub-application whose middleware guards every route: a route
answers without a session only if it is registered with a name starting ``public:`` (the
login page, its form, its stylesheet and the one-time link). Any other route, including
every route added later, redirects a page request to the login and answers an API or
WebSocket request 401. Every request that changes something (not GET/HEAD) must carry the
session's CSRF token (``X-CSRF-Token`` header, or a ``csrf`` form field). Responses carry a
strict Content-Security-Policy (scripts and styles from the package only) and are never
cached; the pages render every viewer-provided string with ``textContent``.

What it shows and does comes from ``DashboardService`` (the same code paths as the chat
commands); who may use it from ``DashboardAuth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from pixelbot.clock import Clock
from pixelbot.errors import ConfigError, ConfigIssue, PixelbotError
from pixelbot.outcomes import (
    Alert,
    ItemQueued,
    ItemSettled,
    ItemStarted,
    Notice,
    Outcome,
    OutcomeBus,
    StreamChanged,
    WheelSpun,
)
from pixelbot.web.auth import DashboardAuth, Session, clean_operator_name
from pixelbot.web.dashboard_service import DashboardService
from pixelbot.web.deps import WebDeps

__all__ = [
    "EXTRA",
    "LINK_NOTICE",
    "LOGIN_COOKIE",
    "PAGES",
    "PREFIX",
    "SESSION_COOKIE",
    "Dashboard",
    "add_routes",
    "build_dashboard",
    "mount_dashboard",
]

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
SESSION_COOKIE = "pixelbot_session"
LOGIN_COOKIE = "pixelbot_login"
PAGES = {
    "": "queue",
    "viewers": "viewers",
    "redeems": "redeems",
    "events": "events",
    "system": "system",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATIC = frozenset({"app.css", "app.js", "login.css"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the one-time link must not leak in a Referer
    "Cache-Control": "no-store",
}
EXTRA = "dashboard"  # WebDeps.extras key of the mounted Dashboard
# The notice that carries a one-time login link: printed for the operator, never shown on a
# dashboard page (a page shared on stream would show everyone a way in).
LINK_NOTICE = "dashboard-login"
LIVE_OUTCOMES = (ItemQueued, ItemStarted, ItemSettled, WheelSpun, Alert, Notice, StreamChanged)
SESSION_KEY = web.RequestKey("dashboard_session", Session)  # set by the guard


def _asset(name: str) -> bytes:
    return resources.files("pixelbot.web").joinpath("static", "dashboard", name).read_bytes()


LIVE_BACKLOG = 200  # updates queued for one page before it is given up on
SESSION_ENDED = (4401, b"session ended")
TOO_SLOW = (4408, b"too far behind")


@dataclass
class LivePage:
    """One open dashboard page's live socket and the updates waiting to be sent to it."""

    socket: web.WebSocketResponse
    session: Session
    backlog: asyncio.Queue[str | tuple[int, bytes]] = field(
        default_factory=lambda: asyncio.Queue(LIVE_BACKLOG + 1)
    )

    def offer(self, message: str) -> bool:
        if self.backlog.qsize() >= LIVE_BACKLOG:
            return False
        self.backlog.put_nowait(message)
        return True

    def end(self, why: tuple[int, bytes]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.backlog.put_nowait(why)

    async def pump(self) -> None:
        """Send what is queued, in order, until told to close."""
        while True:
            message = await self.backlog.get()
            if isinstance(message, tuple):
                await self.socket.close(code=message[0], message=message[1])
                return
            try:
                await self.socket.send_str(message)
            except (ConnectionError, RuntimeError):
                return


@dataclass
class Dashboard:
    """One mounted dashboard: its auth, its service, and the live WebSockets it feeds."""

    auth: DashboardAuth
    service: DashboardService
    clock: Clock
    base_url: str = ""  # for the one-time link printed at start, e.g. http://127.0.0.1:8080
    announce: Callable[[str], Awaitable[None]] | None = None
    pages: list[LivePage] = field(default_factory=list)

    # -- live ----------------------------------------------------------------------------------

    async def outcome(self, outcome: Outcome) -> None:
        """A bus subscriber: queue a line for every open dashboard page. It never waits for
        a page (the bus runs chat too): a page whose backlog is full is dropped, and the
        page reconnects and reloads; a page whose session ended is closed."""
        if not self.pages or (isinstance(outcome, Notice) and outcome.kind == LINK_NOTICE):
            return
        message = json.dumps({"type": "event", "event": live_event(outcome, self.clock.now())})
        for page in list(self.pages):
            if self.auth.session_for(self.auth.cookie_for(page.session)) is None:
                self._drop(page, SESSION_ENDED)
            elif not page.offer(message):
                log.info("a dashboard page fell %d updates behind: dropped", LIVE_BACKLOG)
                self._drop(page, TOO_SLOW)

    def _drop(self, page: LivePage, why: tuple[int, bytes]) -> None:
        """Stop feeding a page; its socket is closed once what was queued has gone out."""
        if page in self.pages:
            self.pages.remove(page)
        page.end(why)

    async def close_sockets(self) -> None:
        for page in list(self.pages):
            await page.socket.close(code=1001, message=b"the bot is stopping")
        self.pages.clear()

    async def print_link(self) -> None:
        """Without a password, log in with a one-time link: print a fresh one."""
        if self.auth.uses_password or self.announce is None:
            return
        token = self.auth.new_link()
        await self.announce(
            f"open the dashboard once with {self.base_url}{PREFIX}/login/link?token={token}"
        )


def live_event(outcome: Outcome, now: datetime) -> dict[str, Any]:
    """What a live outcome looks like on the events page (viewer names as plain values)."""
    viewer: str | None = None
    kind = type(outcome).__name__
    if isinstance(outcome, ItemQueued):
        viewer, kind = outcome.viewer_name, "queued"
        text = f"redeemed {outcome.title} (#{outcome.item_id})"
    elif isinstance(outcome, ItemStarted):
        viewer, kind = outcome.viewer_name, "started"
        text = f"#{outcome.item_id} {outcome.title} is playing"
    elif isinstance(outcome, ItemSettled):
        viewer, kind = outcome.viewer_name, outcome.status
        text = outcome.summary
    elif isinstance(outcome, WheelSpun):
        viewer, kind = outcome.viewer_name, "wheel"
        text = f"won {outcome.prize} on the {outcome.wheel} wheel"
    elif isinstance(outcome, Alert):
        viewer, kind = outcome.viewer_name, outcome.kind
        text = outcome.text
    elif isinstance(outcome, Notice):
        kind, text = outcome.kind, outcome.text
    elif isinstance(outcome, StreamChanged):
        kind = "stream"
        text = f"{outcome.platform} {outcome.channel} is {'live' if outcome.live else 'offline'}"
    else:
        text = ""
    return {"kind": kind, "viewer": viewer, "text": text, "at": now.isoformat(), "live": True}


# ----------------------------------------------------------------------------- the guard


def _is_public(request: web.Request) -> bool:
    route = request.match_info.route
    return bool(route.name and route.name.startswith("public:"))


def _wants_page(request: web.Request) -> bool:
    return (
        request.method == "GET" and "/api/" not in request.path and not request.path.endswith("/ws")
    )


def _guard(dashboard: Dashboard) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await _guarded(dashboard, request, handler)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        if not response.prepared:  # (a WebSocket has sent its headers already)
            response.headers.update(SECURITY_HEADERS)
        return response

    return guard


async def _guarded(dashboard: Dashboard, request: web.Request, handler: Any) -> web.StreamResponse:
    if _is_public(request):
        return await handler(request)  # type: ignore[no-any-return]
    session = dashboard.auth.session_for(request.cookies.get(SESSION_COOKIE))
    if session is None:
        if _wants_page(request):
            raise web.HTTPSeeOther(f"{PREFIX}/login")
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "log in first"}), content_type="application/json"
        )
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token")
        if token is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            token = str((await request.post()).get("csrf", ""))
        if not dashboard.auth.csrf_ok(session, token):
            raise web.HTTPForbidden(
                text=json.dumps({"error": "this request is missing its CSRF token"}),
                content_type="application/json",
            )
    request[SESSION_KEY] = session
    return await handler(request)  # type: ignore[no-any-return]


def _session(request: web.Request) -> Session:
    return request[SESSION_KEY]  # (the guard set it: no handler runs without one)


# ----------------------------------------------------------------------------- login


def _login_page(
    dashboard: Dashboard,
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    token: str = "",
    name: str = "",
) -> web.Response:
    """The login form (a plain form: it works without JavaScript)."""
    cookie, form_token = dashboard.auth.login_form_token()
    with_link = not dashboard.auth.uses_password
    template = _asset("login.html").decode("utf-8")
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
        secure=request.secure,  # (https behind a proxy that says so)
        max_age=int(dashboard.auth.login_form_lifetime.total_seconds()),
    )
    return response


def _see_other(location: str) -> web.Response:
    """A redirect that can carry cookies (an HTTPException may not be returned)."""
    return web.Response(status=303, headers={"Location": location})


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def _login_form(request: web.Request, dashboard: Dashboard) -> tuple[str, Any] | None:
    """The posted (name, form) if the form's own CSRF token holds, else None."""
    form = await request.post()
    if not dashboard.auth.login_form_ok(
        request.cookies.get(LOGIN_COOKIE), str(form.get("csrf", ""))
    ):
        return None
    return str(form.get("name", "")), form


def _logged_in(dashboard: Dashboard, request: web.Request, session: Session) -> web.Response:
    response = _see_other(f"{PREFIX}/")
    response.set_cookie(
        SESSION_COOKIE,
        dashboard.auth.cookie_for(session),
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=request.secure,  # (https behind a proxy that says so)
        max_age=int(dashboard.auth.lifetime.total_seconds()),
    )
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


def _too_many(
    dashboard: Dashboard, request: web.Request, retry_after: float, name: str
) -> web.Response:
    minutes = max(1, round(retry_after / 60))
    response = _login_page(
        dashboard,
        request,
        status=429,
        error=f"Too many tries. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        name=name,
    )
    response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def _login_routes(dashboard: Dashboard) -> list[web.RouteDef]:
    async def login_page(request: web.Request) -> web.Response:
        if dashboard.auth.session_for(request.cookies.get(SESSION_COOKIE)) is not None:
            raise web.HTTPSeeOther(f"{PREFIX}/")
        return _login_page(dashboard, request)

    async def login(request: web.Request) -> web.Response:
        posted = await _login_form(request, dashboard)
        if posted is None:
            return _login_page(dashboard, request, status=403, error="The form expired. Try again.")
        raw_name, form = posted
        name = clean_operator_name(raw_name)
        if name is None:
            return _login_page(
                dashboard, request, status=400, error="Give your name (up to 32 letters)."
            )
        if not dashboard.auth.uses_password:
            return _login_page(dashboard, request, status=403, error="Use the one-time link.")
        result = await dashboard.auth.login_with_password(
            _client(request), name, str(form.get("password", ""))
        )
        if result.throttled:
            return _too_many(dashboard, request, result.retry_after, name)
        if result.session is None:
            log.warning("dashboard: a wrong password from %s", _client(request))
            return _login_page(dashboard, request, status=401, error="Wrong password.", name=name)
        log.info("dashboard: %s logged in from %s", name, _client(request))
        return _logged_in(dashboard, request, result.session)

    async def link_page(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        if dashboard.auth.uses_password or not dashboard.auth.link_valid(token):
            return _login_page(
                dashboard,
                request,
                status=401,
                error="This link was used already or is out of date.",
            )
        return _login_page(dashboard, request, token=token)

    async def link_login(request: web.Request) -> web.Response:
        posted = await _login_form(request, dashboard)
        if posted is None:
            return _login_page(dashboard, request, status=403, error="The form expired. Try again.")
        raw_name, form = posted
        token = str(form.get("token", ""))
        name = clean_operator_name(raw_name)
        if name is None:
            return _login_page(
                dashboard,
                request,
                status=400,
                error="Give your name (up to 32 letters).",
                token=token,
            )
        result = dashboard.auth.login_with_link(_client(request), name, token)
        if result.throttled:
            return _too_many(dashboard, request, result.retry_after, name)
        if result.session is None:
            return _login_page(
                dashboard,
                request,
                status=401,
                error="This link was used already or is out of date.",
            )
        log.info("dashboard: %s logged in with the one-time link", name)
        await dashboard.print_link()  # the next person needs a fresh one
        return _logged_in(dashboard, request, result.session)

    async def login_css(request: web.Request) -> web.Response:
        return web.Response(body=_asset("login.css"), content_type="text/css")

    return [
        web.get("/login", login_page, name="public:login"),
        web.post("/login", login, name="public:login-post"),
        web.get("/login/link", link_page, name="public:link"),
        web.post("/login/link", link_login, name="public:link-post"),
        web.get("/login.css", login_css, name="public:login-css"),
    ]


# ----------------------------------------------------------------------------- pages and API


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "send JSON"}), content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "send a JSON object"}), content_type="application/json"
        )
    return data


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _refused(f"{what} must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _refused(f"{what} must be a whole number") from None
    if abs(number) >= 2**62:  # (beyond any id or amount; the database's integers end at 2**63)
        raise _refused(f"{what} is out of range")
    return number


def _refused(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _kind(data: dict[str, Any]) -> str | None:
    kind = data.get("kind")
    return None if kind in (None, "") else str(kind)


def _api(
    call: Callable[[web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A JSON endpoint: a refusal of ours (``PixelbotError``) is a 400 with its sentence."""

    async def handler(request: web.Request) -> web.Response:
        try:
            return _json(await call(request))
        except PixelbotError as exc:
            return _json({"error": str(exc)}, status=400)

    return handler


def _app_routes(dashboard: Dashboard) -> list[web.RouteDef]:
    service = dashboard.service
    shell = _asset("app.html").decode("utf-8")

    def page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def show(request: web.Request) -> web.Response:
            return web.Response(text=shell.replace("{{page}}", name), content_type="text/html")

        return show

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return web.Response(body=_asset(name), content_type=kind)

    async def session(request: web.Request) -> Any:
        current = _session(request)
        return {"operator": current.operator, "csrf": current.csrf}

    async def logout(request: web.Request) -> web.Response:
        dashboard.auth.close(_session(request))
        response = _see_other(f"{PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def queue(request: web.Request) -> Any:
        return await service.queue()

    async def skip(request: web.Request) -> Any:
        data = await _body(request)
        item = data.get("item_id")
        return await service.skip(
            _session(request).operator, _kind(data), None if item is None else _int(item, "item_id")
        )

    async def pause(request: web.Request) -> Any:
        return await service.pause(_session(request).operator, _kind(await _body(request)))

    async def resume(request: web.Request) -> Any:
        return await service.resume(_session(request).operator, _kind(await _body(request)))

    async def clear(request: web.Request) -> Any:
        return await service.clear(_session(request).operator, _kind(await _body(request)))

    async def search(request: web.Request) -> Any:
        return await service.search(request.query.get("q", ""))

    async def viewer(request: web.Request) -> Any:
        before = request.query.get("before")
        return await service.viewer(
            _int(request.match_info["user_id"], "user"),
            None if before in (None, "") else _int(before, "before"),
        )

    async def adjust(request: web.Request) -> Any:
        data = await _body(request)
        return await service.adjust(
            _session(request).operator,
            _int(request.match_info["user_id"], "user"),
            _int(data.get("amount"), "amount"),
            str(data.get("reason", "")),
            str(data.get("key", "")),
        )

    async def redeems(request: web.Request) -> Any:
        return service.redeems()

    async def toggle(request: web.Request) -> Any:
        data = await _body(request)
        enabled = data.get("enabled")
        if not isinstance(enabled, bool):
            raise _refused("enabled must be true or false")
        return await service.toggle(_session(request).operator, request.match_info["key"], enabled)

    async def events(request: web.Request) -> Any:
        return await service.events()

    async def system(request: web.Request) -> Any:
        return await service.system()

    async def run_verify(request: web.Request) -> Any:
        return await service.run_verify()

    async def backup(request: web.Request) -> Any:
        return await service.backup_now(_session(request).operator)

    async def live(request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-site WebSocket refused")
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        page = LivePage(socket, _session(request))
        dashboard.pages.append(page)
        sender = asyncio.create_task(page.pump())
        try:
            async for message in socket:  # the page only listens; anything it says is ignored
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            if page in dashboard.pages:
                dashboard.pages.remove(page)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return socket

    routes = [web.get(f"/{path}", page(name)) for path, name in PAGES.items()]
    return [
        *routes,
        web.get("/static/{name}", asset),
        web.get("/api/session", _api(session)),
        web.post("/logout", logout),
        web.get("/api/queue", _api(queue)),
        web.post("/api/queue/skip", _api(skip)),
        web.post("/api/queue/pause", _api(pause)),
        web.post("/api/queue/resume", _api(resume)),
        web.post("/api/queue/clear", _api(clear)),
        web.get("/api/viewers", _api(search)),
        web.get("/api/viewers/{user_id}", _api(viewer)),
        web.post("/api/viewers/{user_id}/adjust", _api(adjust)),
        web.get("/api/redeems", _api(redeems)),
        web.post("/api/redeems/{key}", _api(toggle)),
        web.get("/api/events", _api(events)),
        web.get("/api/system", _api(system)),
        web.post("/api/system/verify", _api(run_verify)),
        web.post("/api/system/backup", _api(backup)),
        web.get("/ws", live),
    ]


# ----------------------------------------------------------------------------- assembly


def build_dashboard(dashboard: Dashboard) -> web.Application:
    """The dashboard as a sub-application (every route behind the guard)."""
    sub = web.Application(middlewares=[_guard(dashboard)])
    sub.add_routes(_login_routes(dashboard))
    sub.add_routes(_app_routes(dashboard))

    async def started(_: web.Application) -> None:
        await dashboard.print_link()

    async def stopping(_: web.Application) -> None:
        await dashboard.close_sockets()

    sub.on_startup.append(started)
    sub.on_shutdown.append(stopping)
    return sub


def mount_dashboard(app: web.Application, dashboard: Dashboard, bus: OutcomeBus) -> None:
    """Add the dashboard under ``/dashboard`` and feed it the bus's outcomes."""

    async def to_dashboard(request: web.Request) -> web.Response:
        """``/dashboard`` without the slash: on to the pages, or to the login first."""
        logged_in = dashboard.auth.session_for(request.cookies.get(SESSION_COOKIE)) is not None
        raise web.HTTPSeeOther(f"{PREFIX}/" if logged_in else f"{PREFIX}/login")

    # (before the sub-application, which would otherwise take the bare prefix and answer 404)
    app.router.add_get(PREFIX, to_dashboard)
    app.add_subapp(PREFIX, build_dashboard(dashboard))
    bus.subscribe(dashboard.outcome, *LIVE_OUTCOMES)

    async def unsubscribe(_: web.Application) -> None:
        bus.unsubscribe(dashboard.outcome)

    app.on_cleanup.append(unsubscribe)


def add_routes(app: web.Application, deps: WebDeps) -> None:
    """The server's route hook: mount the dashboard when ``web.dashboard.enabled``.

    Refuses (``ConfigError`` on ``web.host``) to serve it on an address other machines can
    reach without a password; the config check catches that first, this is the last line."""
    settings = deps.settings().web
    if not settings.dashboard.enabled:
        return
    password = settings.dashboard.password
    if password is None and not settings.local_only:
        raise ConfigError(
            [
                ConfigIssue(
                    "web.host",
                    f"{settings.host} can be reached from other machines, so the dashboard "
                    "needs a password (PIXELBOT_DASHBOARD_PASSWORD)",
                )
            ]
        )

    async def announce(text: str) -> None:
        await deps.bus.publish(Notice(LINK_NOTICE, text))

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    dashboard = Dashboard(
        auth=DashboardAuth.create(
            deps.clock,
            None if password is None else password.get_secret_value(),
            settings.dashboard.session,
        ),
        service=DashboardService(deps.services, deps.db, deps.clock, deps.scheduler),
        clock=deps.clock,
        base_url=f"http://{host}:{settings.port}",
        announce=announce,
    )
    deps.extras[EXTRA] = dashboard
    mount_dashboard(app, dashboard, deps.bus)
