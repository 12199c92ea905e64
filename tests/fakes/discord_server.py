"""A fake Discord on localhost: the REST API and the gateway WebSocket, for the real discord.py
client (DESIGN §5: point ``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` here).

Only documented shapes and opcodes, each with its source:

- Gateway (https://discord.com/developers/docs/events/gateway): Hello (op 10) on connect with
  ``heartbeat_interval``; Identify (op 2) answered by a READY dispatch (op 0) and a
  GUILD_CREATE per guild; Heartbeat (op 1) answered by Heartbeat ACK (op 11); Resume (op 6)
  replays the dispatches after the client's ``seq`` and ends with RESUMED, or Invalid Session
  (op 9, ``d: false``) for an unknown session; Reconnect (op 7) sent on request. Close code
  4004 for a wrong token and 4014 for privileged intents that are not enabled
  (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-close-event-codes).
  Transport compression ``zlib-stream`` (one zlib context per connection, every message ends
  with a Z_SYNC_FLUSH) and ``zstd-stream`` (one zstd stream, flushed per message), as the
  client asks in the URL (https://discord.com/developers/docs/events/gateway#transport-compression).
- Privileged intents: GUILD_MEMBERS (1 << 1), GUILD_PRESENCES (1 << 8), MESSAGE_CONTENT
  (1 << 15) (https://discord.com/developers/docs/events/gateway#privileged-intents).
- REST (https://discord.com/developers/docs/resources/...): Get Current User, Create Message,
  Bulk Overwrite Guild Application Commands, Create Interaction Response (with
  ``with_response``: an Interaction Callback Response), Edit / Delete Original Interaction
  Response, Create Followup Message. JSON bodies are sent with ``Content-Type:
  application/json`` exactly (discord.py compares the header, DESIGN §5).

Everything the bot sends is kept in ``requests`` for the tests to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

TOKEN = "fake-bot-token-0123456789"
APPLICATION_ID = "1100000000000000001"
BOT_USER = {
    "id": APPLICATION_ID,
    "username": "pixelbot",
    "discriminator": "0",
    "global_name": "Pixel Bot",
    "avatar": None,
    "bot": True,
}
MESSAGE_CONTENT = 1 << 15
PRIVILEGED = (1 << 1) | (1 << 8) | MESSAGE_CONTENT
HELLO, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HEARTBEAT_ACK = (
    10,
    1,
    2,
    6,
    7,
    9,
    11,
)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


@dataclass
class Request:
    method: str
    path: str
    body: Any
    query: dict[str, str]


@dataclass
class _Session:
    id: str
    intents: int = 0
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for resuming
    socket: _Socket | None = None


class _Socket:
    """One gateway connection, with the transport compression the client asked for."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._zstd: Any = None
        if compress == "zstd-stream":
            import zstandard

            self._zstd_mod = zstandard
            self._zstd = zstandard.ZstdCompressor().compressobj()
        self.lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        async with self.lock:
            if self.ws.closed:
                return
            if self._zlib is not None:
                await self.ws.send_bytes(
                    self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                )
            elif self._zstd is not None:
                flush = self._zstd_mod.COMPRESSOBJ_FLUSH_BLOCK
                await self.ws.send_bytes(self._zstd.compress(data) + self._zstd.flush(flush))
            else:
                await self.ws.send_str(data.decode())


class FakeDiscord:
    def __init__(self, guild: dict[str, Any], *, allow_privileged: bool = True) -> None:
        self.guild = guild
        self.allow_privileged = allow_privileged
        self.requests: list[Request] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.closes: list[int | None] = []  # the close code of every gateway connection ended
        self.heartbeat_interval = 41250  # ms, sent in Hello
        self.commands: list[dict[str, Any]] = []
        self._sessions: dict[str, _Session] = {}
        self._current: _Session | None = None
        self._ids = itertools.count(1300000000000000000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.connected = asyncio.Event()
        self.resume_allowed = asyncio.Event()  # clear it to hold resumes back (a slow server)
        self.resume_allowed.set()

    # ------------------------------------------------------------------ server
    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway/", self._gateway)
        api = "/api/v10"
        app.router.add_get(api + "/users/@me", self._me)
        app.router.add_get(api + "/oauth2/applications/@me", self._application)
        app.router.add_post(api + "/channels/{channel}/messages", self._create_message)
        app.router.add_put(api + "/applications/{app}/guilds/{guild}/commands", self._overwrite)
        app.router.add_post(api + "/interactions/{id}/{token}/callback", self._callback)
        app.router.add_patch(api + "/webhooks/{app}/{token}/messages/@original", self._edit)
        app.router.add_delete(api + "/webhooks/{app}/{token}/messages/@original", self._delete)
        app.router.add_post(api + "/webhooks/{app}/{token}", self._followup)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for session in self._sessions.values():
            if session.socket is not None:
                with contextlib.suppress(Exception):
                    await session.socket.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    def new_id(self) -> str:
        return str(next(self._ids))

    def sent(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # ------------------------------------------------------------------ REST
    async def _record(self, request: web.Request) -> Request:
        body = await request.json() if request.can_read_body else None
        found = Request(request.method, request.path, body, dict(request.query))
        self.requests.append(found)
        return found

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {TOKEN}"

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        return json_response(BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        # Get Current Bot Application Information: an Application object
        if not self._authorized(request):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        owner = {**BOT_USER, "id": "1000000000000000001", "username": "streamer"}
        del owner["bot"]
        return json_response(
            {
                "id": APPLICATION_ID,
                "name": "Pixel Bot",
                "icon": None,
                "description": "",
                "bot_public": False,
                "bot_require_code_grant": False,
                "bot": BOT_USER,
                "owner": owner,
                "verify_key": "0" * 64,
                "team": None,
                "flags": self.application_flags,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": 1,
            }
        )

    @property
    def application_flags(self) -> int:
        # GATEWAY_MESSAGE_CONTENT_LIMITED (1 << 19): the intent is switched on in the portal
        return 1 << 19 if self.allow_privileged else 0

    def _message(
        self, channel: str, body: dict[str, Any], author: dict[str, Any]
    ) -> dict[str, Any]:
        # the documented Message object (the fields that are always present)
        return {
            "id": self.new_id(),
            "channel_id": channel,
            "author": author,
            "content": body.get("content", ""),
            "timestamp": "2026-01-01T20:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        found = await self._record(request)
        return json_response(self._message(request.match_info["channel"], found.body, BOT_USER))

    async def _overwrite(self, request: web.Request) -> web.Response:
        found = await self._record(request)
        self.commands = [
            {
                **command,
                "id": self.new_id(),
                "application_id": APPLICATION_ID,
                "version": "1",
                "guild_id": request.match_info["guild"],
                "default_member_permissions": None,
            }
            for command in found.body
        ]
        return json_response(self.commands)

    async def _callback(self, request: web.Request) -> web.Response:
        found = await self._record(request)
        if request.query.get("with_response") in ("1", "true", "True"):
            # Interaction Callback Response: the interaction, and the resource it made
            return json_response(
                {
                    "interaction": {
                        "id": request.match_info["id"],
                        "type": 2,
                        "response_message_loading": found.body.get("type") == 5,
                        "response_message_ephemeral": False,
                    },
                    "resource": {"type": found.body.get("type")},
                }
            )
        return web.Response(status=204)

    async def _edit(self, request: web.Request) -> web.Response:
        found = await self._record(request)
        return json_response(self._message("0", found.body, BOT_USER))

    async def _followup(self, request: web.Request) -> web.Response:
        found = await self._record(request)
        return json_response(self._message("0", found.body, BOT_USER))

    async def _delete(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=204)

    # ------------------------------------------------------------------ gateway
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        socket = _Socket(ws, request.query.get("compress"))
        hello = {"heartbeat_interval": self.heartbeat_interval}
        await socket.send({"op": HELLO, "d": hello, "s": None, "t": None})
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            op, data = frame.get("op"), frame.get("d")
            if op == HEARTBEAT:
                await socket.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            elif op == IDENTIFY:
                await self._identify(socket, data)
            elif op == RESUME:
                await self._resume(socket, data)
        self.closes.append(ws.close_code)
        return ws

    async def _identify(self, socket: _Socket, data: dict[str, Any]) -> None:
        if data.get("token") != TOKEN:
            await socket.ws.close(code=4004, message=b"Authentication failed.")
            return
        if int(data.get("intents", 0)) & PRIVILEGED and not self.allow_privileged:
            await socket.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self.identifies.append(data)
        session = _Session(self.new_id(), int(data.get("intents", 0)))
        self._sessions[session.id] = session
        session.socket = socket
        self._current = session
        ready = {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": self.guild["id"], "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {
                "id": APPLICATION_ID,
                "flags": 0 if not self.allow_privileged else 1 << 19,
            },
        }
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self.guild)
        self.connected.set()

    async def _resume(self, socket: _Socket, data: dict[str, Any]) -> None:
        await self.resume_allowed.wait()
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != TOKEN:
            await socket.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        self.resumes += 1
        session.socket = socket
        self._current = session
        after = int(data.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > after:
                await socket.send(frame)
        await self._send_dispatch(session, "RESUMED", {})
        self.connected.set()

    async def _send_dispatch(self, session: _Session, kind: str, data: Any) -> None:
        if kind == "MESSAGE_CREATE" and not session.intents & MESSAGE_CONTENT:
            # Without the intent these fields arrive empty (the bot not mentioned, not a DM):
            # https://discord.com/developers/docs/events/gateway#message-content-intent
            data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        session.seq += 1
        frame = {"op": 0, "t": kind, "s": session.seq, "d": data}
        session.sent.append(frame)
        if session.socket is not None:
            await session.socket.send(frame)

    # ------------------------------------------------------------------ test controls
    @property
    def sequence(self) -> int:
        """The sequence number (``s``) of the last dispatch sent to the current session."""
        return self._current.seq if self._current is not None else 0

    async def dispatch(self, kind: str, data: dict[str, Any]) -> None:
        """Send a dispatch to the bot (kept for a resume if the bot is away)."""
        assert self._current is not None, "no bot has identified"
        await self._send_dispatch(self._current, kind, data)

    async def reconnect(self) -> None:
        """Ask the bot to reconnect (op 7); it closes and resumes. Dispatches sent meanwhile
        wait for the resume."""
        session = self._current
        assert session is not None and session.socket is not None
        socket, session.socket = session.socket, None
        self.connected.clear()
        await socket.send({"op": RECONNECT, "d": None, "s": None, "t": None})
