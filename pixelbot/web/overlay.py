"""The overlay pages: one URL per OBS browser source, each behind the read-only overlay key.

``/overlay/<name>?key=KEY`` serves ``static/overlay/<name>.html``; the page's scripts and
styles are under ``/overlay/static/``. The key opens the overlays and nothing else (the
dashboard has its own login): a viewer who learns an overlay URL can only watch it.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from pixelbot.web.deps import DEPS, STATIC_DIR, WebDeps

__all__ = ["OVERLAYS", "add_routes", "key_matches", "overlay_url"]

OVERLAYS = ("wheel", "alerts", "tts", "now")
OVERLAY_DIR = STATIC_DIR / "overlay"


def add_routes(app: web.Application, deps: WebDeps) -> None:
    app.router.add_static("/overlay/static/", OVERLAY_DIR, append_version=True)
    app.router.add_get("/overlay/{name}", _page)


def key_matches(request: web.Request) -> bool:
    given = request.query.get("key", "")
    expected = request.app[DEPS].overlay_key
    return hmac.compare_digest(given.encode(), expected.encode())


def overlay_url(base: str, name: str, key: str) -> str:
    return f"{base}/overlay/{name}?key={key}"


async def _page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in OVERLAYS:
        raise web.HTTPNotFound(text=f"no overlay {name!r}; there are: {', '.join(OVERLAYS)}")
    if not key_matches(request):
        raise web.HTTPForbidden(text="this overlay needs its key (bot.py web urls prints it)")
    response = web.FileResponse(OVERLAY_DIR / f"{name}.html")
    response.headers["Cache-Control"] = "no-store"
    return response
