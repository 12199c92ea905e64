"""A fake Joystick.tv on localhost, speaking the gateway protocol as Joystick documents it:
Rails ActionCable over a WebSocket at ``/cable?token=<basic key>`` (subprotocol
``actioncable-v1-json``), plus the OAuth token endpoint.

The gateway sends ``welcome`` on connect, answers a ``subscribe`` to ``GatewayChannel`` with
``confirm_subscription`` (or ``reject_subscription`` when the key is wrong or ``reject`` is
set), pings every ``ping_every`` seconds, and broadcasts what a test ``push``es to every
subscribed socket. Every ``message`` command a client sends is decoded into ``actions``
(``{"action": "send_message", "text": ..., "channelId": ...}``). ``drop()`` closes every
socket as a crashing gateway would; ``stop()`` / ``start()`` take the whole server away and
bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

from aiohttp import WSMsgType, web

from pixelbot.platforms.joystick_auth import basic_key

CLIENT_ID, CLIENT_SECRET = "jt-client-id", "jt-client-secret"
GATEWAY = json.dumps({"channel": "GatewayChannel"}, separators=(",", ":"))
CHANNEL = "ch-stream-1"
STREAMER = "streamer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeJoystick:
    def __init__(self, *, ping_every: float = 0.2) -> None:
        self.port = _free_port()
        self.ping_every = ping_every
        self.key = basic_key(CLIENT_ID, CLIENT_SECRET)
        self.reject = False  # refuse every subscription (a revoked bot)
        self.actions: list[dict[str, Any]] = []
        self.connects = 0  # sockets opened (accepted or not)
        self.subscribed = 0  # subscriptions confirmed
        self.codes: dict[str, dict[str, Any]] = {}  # OAuth code -> token response
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Event()

    # ------------------------------------------------------------------ addresses
    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/cable"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cable", self._cable)
        app.router.add_post("/api/oauth/token", self._token)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """The server goes away: sockets closed, new connections refused."""
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeJoystick:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop(self) -> None:
        """Close every socket (the gateway restarted); the server keeps listening."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()

    # ------------------------------------------------------------------ the gateway
    async def _cable(self, request: web.Request) -> web.StreamResponse:
        self.connects += 1
        ws = web.WebSocketResponse(protocols=("actioncable-v1-json",), autoping=True)
        await ws.prepare(request)
        key_ok = request.query.get("token") == self.key
        await ws.send_json({"type": "welcome"})
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                command = frame.get("command")
                if command == "subscribe":
                    if json.loads(frame["identifier"]).get("channel") != "GatewayChannel":
                        continue
                    if not key_ok or self.reject:
                        await ws.send_json(
                            {"identifier": frame["identifier"], "type": "reject_subscription"}
                        )
                        continue
                    self._sockets.add(ws)
                    self.subscribed += 1
                    await ws.send_json(
                        {"identifier": frame["identifier"], "type": "confirm_subscription"}
                    )
                elif command == "message" and ws in self._sockets:
                    self.actions.append(json.loads(frame["data"]))
                    self.changed.set()
        finally:
            pinger.cancel()
            self._sockets.discard(ws)
        return ws

    async def _ping(self, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            while not ws.closed:
                await asyncio.sleep(self.ping_every)
                await ws.send_json(
                    {"type": "ping", "message": int(asyncio.get_running_loop().time())}
                )

    @property
    def listening(self) -> int:
        return len(self._sockets)

    async def push(self, message: dict[str, Any]) -> None:
        """Deliver one gateway data frame to every subscribed socket."""
        await self.push_raw(json.dumps({"identifier": GATEWAY, "message": message}))

    async def push_raw(self, text: str) -> None:
        for ws in list(self._sockets):
            await ws.send_str(text)

    def said(self) -> list[str]:
        return [a["text"] for a in self.actions if a.get("action") == "send_message"]

    # ------------------------------------------------------------------ OAuth
    async def _token(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Basic {self.key}":
            return web.json_response({"error": "invalid_client"}, status=401)
        if request.query.get("grant_type") != "authorization_code":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        found = self.codes.pop(request.query.get("code", ""), None)  # a code works once
        if found is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(found)


# ---------------------------------------------------------------------- payloads (docs' shapes)


def _author(
    username: str, *, streamer: bool = False, moderator: bool = False, subscriber: bool = False
) -> dict[str, Any]:
    return {
        "slug": username.lower(),
        "username": username,
        "usernameColor": None,
        "displayNameWithFlair": username,
        "signedPhotoUrl": "",
        "signedPhotoThumbUrl": "",
        "isStreamer": streamer,
        "isModerator": moderator,
        "isSubscriber": subscriber,
        "isVerified": False,
        "isContentCreator": False,
    }


def chat(
    username: str,
    text: str,
    message_id: str,
    *,
    at: str = "2026-01-01T20:00:00Z",
    channel: str = CHANNEL,
    **roles: bool,
) -> dict[str, Any]:
    return {
        "event": "ChatMessage",
        "createdAt": at,
        "messageId": message_id,
        "type": "new_message",
        "visibility": "public",
        "text": text,
        "botCommand": None,
        "botCommandArg": None,
        "emotesUsed": [],
        "author": _author(username, **roles),
        "streamer": _author(STREAMER, streamer=True),
        "channelId": channel,
    }


def presence(
    username: str, kind: str, event_id: str, *, at: str = "2026-01-01T20:00:00Z"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "UserPresence",
        "type": kind,
        "text": username,
        "channelId": CHANNEL,
        "createdAt": at,
    }


def stream_event(
    kind: str,
    event_id: str,
    metadata: dict[str, Any],
    *,
    text: str = "",
    at: str = "2026-01-01T20:00:00Z",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "StreamEvent",
        "type": kind,
        "text": text,
        "metadata": json.dumps(metadata),
        "channelId": CHANNEL,
        "createdAt": at,
    }
