"""The web server in the bot process: one aiohttp application for the overlays and the dashboard.

It is built and started by the one assembly (``pixelbot/app/assembly.py``), after the
scheduler and before the platforms, and stopped in the reverse order. It wires nothing itself:
every route module gets the ``WebDeps`` (``pixelbot/web/deps.py``) the assembly filled in (the
same services the chat commands use, so a dashboard skip and ``!skip`` refund the same way)
and registers its routes::

    def add_routes(app: web.Application, deps: WebDeps) -> None: ...

``ROUTES`` lists those functions; a new page is one module and one entry there. Static files
are served from ``pixelbot/web/static/<module>/`` (no build step, no CDN: the stream PC may be
offline).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from pixelbot.config.web import WebSettings
from pixelbot.errors import PixelbotError
from pixelbot.web import dashboard, overlay
from pixelbot.web.deps import DEPS, STATIC_DIR, WebDeps

__all__ = [
    "DEPS",
    "ROUTES",
    "STATIC_DIR",
    "AddRoutes",
    "WebDeps",
    "WebServer",
    "build_web_app",
]

log = logging.getLogger(__name__)

AddRoutes = Callable[[web.Application, WebDeps], None]


ROUTES: list[AddRoutes] = [overlay.add_routes, dashboard.add_routes]


def build_web_app(deps: WebDeps, routes: list[AddRoutes] | None = None) -> web.Application:
    app = web.Application(middlewares=[_security_headers])
    app[DEPS] = deps
    app.router.add_get("/healthz", _health)
    app.router.add_get("/status", _status)
    for add_routes in ROUTES if routes is None else routes:
        add_routes(app, deps)
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


LOOPBACK = frozenset({"127.0.0.1", "::1"})


LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})


async def _status(request: web.Request) -> web.Response:
    """The platforms' and the web server's status, for ``bot.py status`` on this machine.

    Both the peer and the name it asked for must be this machine: a web page whose own name
    was made to resolve to 127.0.0.1 (DNS rebinding) reaches us from loopback, but asks for
    its own name."""
    if request.remote not in LOOPBACK or request.url.host not in LOOPBACK_NAMES:
        raise web.HTTPForbidden(text="the status is only shown to this machine")
    found = {}
    for name, status in request.app[DEPS].status().items():
        found[name] = {
            "connected": bool(getattr(status, "connected", False)),
            "detail": str(getattr(status, "detail", "")),
            "last_event_at": _when(getattr(status, "last_event_at", None)),
            "retrying_since": _when(getattr(status, "retrying_since", None)),
        }
    return web.json_response(found)


def _when(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:  # (a WebSocket is already under way)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


class WebServer:
    """Runs the application on ``web.host``:``web.port`` while the bot runs."""

    def __init__(self, settings: WebSettings, app: web.Application) -> None:
        self._settings = settings
        self.app = app
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the port really bound (``port: 0`` picks one)
        self.error: str | None = None
        self.overlay_key: str | None = app[DEPS].overlay_key if DEPS in app else None

    @property
    def url(self) -> str:
        host = self._settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port if self.port is not None else self._settings.port}"

    async def start(self) -> None:
        """Listen, or raise ``PixelbotError`` with a line the streamer can act on."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._settings.host, self._settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self._settings.host}:{self._settings.port}"
            self.error = f"cannot listen on {where}: {exc.strerror or exc}"
            raise PixelbotError(f"the web server {self.error} (web.host / web.port)") from exc
        self._runner = runner
        addresses = runner.addresses  # (the real port when ``port: 0`` picked one)
        self.port = int(addresses[0][1]) if addresses else self._settings.port
        log.info("web server on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def running(self) -> bool:
        return self._runner is not None
