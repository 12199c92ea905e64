"""The overlay pages: one URL per OBS browser source, each behind the read-only overlay key.

- ``/overlay/<name>?key=KEY``: the page (``static/overlay/<name>.html``);
- ``/overlay/ws?key=KEY&overlay=<name>``: its live channel (``pixelbot/web/hub.py``);
- ``/overlay/tts/audio/<item>?key=KEY``: a TTS item's WAV, for the TTS page to play;
- ``/overlay/sounds/<file>?key=KEY``: an alert's sound (only files the alerts config names);
- ``/overlay/static/...``: scripts and styles (no secrets in them, so no key).

The key opens the overlays and nothing else (the dashboard has its own login): a viewer who
learns an overlay URL can only watch it.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import WSMsgType, web

from pixelbot.config.web import ALERT_KINDS
from pixelbot.web.deps import DEPS, STATIC_DIR, WebDeps
from pixelbot.web.hub import OverlayHub
from pixelbot.web.keys import OVERLAY_PAGES

__all__ = ["OVERLAYS", "add_routes", "key_matches", "overlay_url"]

log = logging.getLogger(__name__)

OVERLAYS = OVERLAY_PAGES
OVERLAY_DIR = STATIC_DIR / "overlay"
MAX_PAGE_MESSAGE = 4096  # bytes; a page only ever reports "ended"
# The pages load only their own files, and no inline script runs: a viewer's name that slipped
# into the page as markup would still do nothing.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "media-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


def add_routes(app: web.Application, deps: WebDeps) -> None:
    hub = deps.overlays
    if hub is not None:  # (open pages would hold the shutdown up)
        app.on_shutdown.append(lambda _app: hub.disconnect_all())
    app.router.add_static("/overlay/static/", OVERLAY_DIR)
    app.router.add_get("/overlay/ws", _socket)
    app.router.add_get("/overlay/tts/audio/{item_id:\\d+}", _tts_audio)
    app.router.add_get("/overlay/sounds/{file}", _sound)
    app.router.add_get("/overlay/{name}", _page)


def key_matches(request: web.Request) -> bool:
    given = request.query.get("key", "")
    expected = request.app[DEPS].overlay_key
    return hmac.compare_digest(given.encode(), expected.encode())


def _require_key(request: web.Request) -> None:
    if not key_matches(request):
        raise web.HTTPForbidden(text="this overlay needs its key (bot.py web urls prints it)")


def overlay_url(base: str, name: str, key: str) -> str:
    return f"{base}/overlay/{name}?key={key}"


def _hub(request: web.Request) -> OverlayHub:
    hub = request.app[DEPS].overlays
    if hub is None:
        raise web.HTTPServiceUnavailable(text="the overlays are not running")
    return hub


async def _page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in OVERLAYS:
        raise web.HTTPNotFound(text=f"no overlay {name!r}; there are: {', '.join(OVERLAYS)}")
    _require_key(request)
    response = web.FileResponse(OVERLAY_DIR / f"{name}.html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = POLICY
    return response


async def _socket(request: web.Request) -> web.StreamResponse:
    _require_key(request)
    overlay = request.query.get("overlay", "")
    if overlay not in OVERLAYS:
        raise web.HTTPBadRequest(text=f"overlay must be one of {', '.join(OVERLAYS)}")
    hub = _hub(request)
    socket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_PAGE_MESSAGE)
    limit = request.app[DEPS].settings().web.overlays.max_connections
    if not hub.connections.admit(limit):
        return await hub.connections.refuse(request, socket, limit)
    try:
        await socket.prepare(request)
        await _serve(hub, overlay, socket)
    finally:
        hub.connections.release()
    return socket


async def _serve(hub: OverlayHub, overlay: str, socket: web.WebSocketResponse) -> None:
    """Keep the page posted and hear what it says, until it goes."""
    try:
        await hub.attach(overlay, socket)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue  # a page of ours never sends that; ignore it
            if isinstance(data, dict) and data.get("type") in ("ended", "error"):
                hub.report(overlay, data)
    finally:
        hub.detach(overlay, socket)


async def _tts_audio(request: web.Request) -> web.StreamResponse:
    _require_key(request)
    deps = request.app[DEPS]
    folder = deps.base_dir / deps.settings().tts.dir  # (an absolute tts.dir stays itself)
    path = folder / f"tts-{int(request.match_info['item_id'])}.wav"
    if not path.is_file():
        raise web.HTTPNotFound(text="no such TTS audio (it may have been cleaned up)")
    return web.FileResponse(path, headers={"Cache-Control": "no-store"})


async def _sound(request: web.Request) -> web.StreamResponse:
    _require_key(request)
    deps = request.app[DEPS]
    alerts = deps.settings().web.overlays.alerts
    name = request.match_info["file"]
    named = {getattr(alerts, kind).sound for kind in ALERT_KINDS}
    if name not in named:  # only the files the config names: never a path of the caller's
        raise web.HTTPNotFound(text="no such alert sound")
    path = deps.base_dir / alerts.sounds_dir / name
    if not path.is_file():
        raise web.HTTPNotFound(text=f"the alert sound {name} is missing from {alerts.sounds_dir}")
    return web.FileResponse(path)
