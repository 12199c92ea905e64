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

What it shows and does comes from ``DashboardService`` (``dashboard_service.py``: the same
code paths as the chat commands); who may use it from ``DashboardAuth`` (``auth.py``) through
the login routes (``dashboard_login.py``); what happens reaches open pages through the live
feed (``dashboard_live.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from pixelbot.clock import Clock
from pixelbot.commands.dispatcher import RESTARTING
from pixelbot.config.web import MAX_DASHBOARD_CONNECTIONS, MAX_OVERLAY_CONNECTIONS
from pixelbot.errors import ConfigError, ConfigIssue, PixelbotError, WriterStopped
from pixelbot.outcomes import Notice, OutcomeBus
from pixelbot.web.auth import DashboardAuth, Session
from pixelbot.web.connections import ConnectionCap
from pixelbot.web.dashboard_live import LINK_NOTICE, LIVE_OUTCOMES, LiveFeed, LivePage
from pixelbot.web.dashboard_login import (
    LOGIN_COOKIE,
    PREFIX,
    SECURE_COOKIES,
    SESSION_COOKIE,
    asset,
    login_routes,
    secure_cookies,
    see_other,
)
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
SESSION_KEY = web.RequestKey("dashboard_session", Session)  # set by the guard


@dataclass
class Dashboard:
    """One mounted dashboard: its auth, its service, and the live feed of its open pages."""

    auth: DashboardAuth
    service: DashboardService
    clock: Clock
    base_url: str = ""  # for the one-time link printed at start, e.g. http://127.0.0.1:8080
    announce: Callable[[str], Awaitable[None]] | None = None
    secure_cookies: bool = False  # web.secure_cookies: behind a TLS reverse proxy
    # web.dashboard.max_connections, read at each connection (it changes on !reload)
    max_connections: Callable[[], int] = lambda: MAX_DASHBOARD_CONNECTIONS
    # The overlay pages' cap (the overlay hub's), shown on the System page; None: no overlays.
    overlay_connections: ConnectionCap | None = None
    max_overlay_connections: Callable[[], int] = lambda: MAX_OVERLAY_CONNECTIONS
    live: LiveFeed = field(init=False)

    def __post_init__(self) -> None:
        self.live = LiveFeed(self.auth, self.clock)

    def sockets(self) -> list[dict[str, Any]]:
        """The live sockets of each kind: open, refused since the start, and the cap (with
        the setting that raises it), for the System page. Refusals mean a page could not get
        live updates: too many tabs, a page stuck reconnecting, or a leaked overlay key."""
        kinds = [("dashboard", self.live.connections, self.max_connections, "web.dashboard")]
        if self.overlay_connections is not None:
            overlays = self.overlay_connections
            kinds.insert(0, ("overlay", overlays, self.max_overlay_connections, "web.overlays"))
        return [
            {
                "kind": kind,
                "open": cap.open,
                "refused": cap.refused,
                "cap": limit(),
                "setting": f"{section}.max_connections",
            }
            for kind, cap, limit, section in kinds
        ]

    async def print_link(self) -> None:
        """Without a password, log in with a one-time link: print a fresh one."""
        if self.auth.uses_password or self.announce is None:
            return
        token = self.auth.new_link()
        await self.announce(
            f"open the dashboard once with {self.base_url}{PREFIX}/login/link?token={token}"
        )


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


# ----------------------------------------------------------------------------- pages and API


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:  # (not JSON, not UTF-8, or a number too long for Python to read)
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "send JSON"}), content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "send a JSON object"}), content_type="application/json"
        )
    return data


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool | float):  # (1.9 must not quietly become 1)
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
    """A JSON endpoint: a refusal of ours (``PixelbotError``) is a 400 with its sentence; one
    that met the economy writer stopped (a shutdown) is a 503 saying so, its cause logged."""

    async def handler(request: web.Request) -> web.Response:
        try:
            return _json(await call(request))
        except WriterStopped as stopped:
            log.warning("dashboard %s %s did not run: %s", request.method, request.path, stopped)
            return _json({"error": RESTARTING}, status=503)
        except PixelbotError as exc:
            return _json({"error": str(exc)}, status=400)

    return handler


def _app_routes(dashboard: Dashboard) -> list[web.RouteDef]:
    service = dashboard.service
    shell = asset("app.html").decode("utf-8")

    def page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def show(request: web.Request) -> web.Response:
            return web.Response(text=shell.replace("{{page}}", name), content_type="text/html")

        return show

    async def static_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return web.Response(body=asset(name), content_type=kind)

    async def session(request: web.Request) -> Any:
        current = _session(request)
        return {"operator": current.operator, "csrf": current.csrf}

    async def logout(request: web.Request) -> web.Response:
        dashboard.auth.close(_session(request))
        response = see_other(f"{PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=PREFIX, secure=secure_cookies(request) or None)
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
        return {**await service.system(), "sockets": dashboard.sockets()}

    async def run_verify(request: web.Request) -> Any:
        return await service.run_verify()

    async def backup(request: web.Request) -> Any:
        return await service.backup_now(_session(request).operator)

    async def live(request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-site WebSocket refused")
        socket = web.WebSocketResponse(heartbeat=30)
        connections, limit = dashboard.live.connections, dashboard.max_connections()
        if not connections.admit(limit):  # (the pages already open are not touched)
            return await connections.refuse(request, socket, limit)
        try:
            await socket.prepare(request)
            await _serve_live(dashboard.live, LivePage(socket, _session(request)))
        finally:
            connections.release()
        return socket

    routes = [web.get(f"/{path}", page(name)) for path, name in PAGES.items()]
    return [
        *routes,
        web.get("/static/{name}", static_file),
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


async def _serve_live(live: LiveFeed, page: LivePage) -> None:
    """Feed one page its updates until its socket closes (or drops: the loop ends either way)."""
    live.pages.append(page)
    sender = asyncio.create_task(page.pump())
    try:
        async for message in page.socket:  # the page only listens; anything it says is ignored
            if message.type == WSMsgType.ERROR:
                break
    finally:
        if page in live.pages:
            live.pages.remove(page)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


# ----------------------------------------------------------------------------- assembly


def build_dashboard(dashboard: Dashboard) -> web.Application:
    """The dashboard as a sub-application (every route behind the guard)."""
    sub = web.Application(middlewares=[_guard(dashboard)])
    sub[SECURE_COOKIES] = dashboard.secure_cookies
    sub.add_routes(login_routes(dashboard.auth, dashboard.print_link))
    sub.add_routes(_app_routes(dashboard))

    async def started(_: web.Application) -> None:
        await dashboard.print_link()

    async def stopping(_: web.Application) -> None:
        await dashboard.live.close_sockets()

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
    bus.subscribe(dashboard.live.outcome, *LIVE_OUTCOMES)

    async def unsubscribe(_: web.Application) -> None:
        bus.unsubscribe(dashboard.live.outcome)

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
        secure_cookies=settings.secure_cookies,
        max_connections=lambda: deps.settings().web.dashboard.max_connections,
        overlay_connections=None if deps.overlays is None else deps.overlays.connections,
        max_overlay_connections=lambda: deps.settings().web.overlays.max_connections,
    )
    deps.extras[EXTRA] = dashboard
    mount_dashboard(app, dashboard, deps.bus)
