"""A fake Twitch on localhost: the OAuth endpoints, the Helix calls the adapter makes, and the
EventSub WebSocket, speaking the documented formats (dev.twitch.tv: Authentication, Helix
reference, EventSub WebSocket "Handling WebSocket Events"), so the REAL twitchio client runs
against it::

    async with FakeTwitch() as twitch:
        twitch.add_user_token("bot-token", "bot-refresh", BOT, scopes=[...])
        ... start the adapter with config urls twitch.api_url / auth_url / eventsub_url ...
        await twitch.notify(*payloads.follow("77", "alice"))
        assert twitch.chat_sent[-1].text == "Thanks for the follow, Alice! +50 pixels"

What it checks like Twitch does: a Helix call needs a known, unexpired token (else 401
"Invalid OAuth token", which makes twitchio refresh); a WebSocket subscription names a live
session of this server; a notification goes to the session holding a subscription of that type.
Controls: ``expire(token)``, ``reconnect()`` (session_reconnect to a new URL), ``drop()`` (cut
the sockets without a close frame), ``revoke(type)`` (a revocation message).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

__all__ = ["FakeTwitch", "SentChat"]

CLIENT_ID = "fake-client-id"
APP_TOKEN = "fake-app-token"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class UserToken:
    access: str
    refresh: str
    user: dict[str, str]
    scopes: list[str]
    expired: bool = False


@dataclass
class SentChat:
    sender_id: str
    broadcaster_id: str
    text: str
    reply_to: str | None = None


@dataclass
class Subscription:
    id: str
    type: str
    version: str
    condition: dict[str, str]
    session_id: str
    token_user: str
    status: str = "enabled"
    created_at: str = field(default_factory=_now)

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "version": self.version,
            "cost": 0,
            "condition": self.condition,
            "transport": {"method": "websocket", "session_id": self.session_id},
            "created_at": self.created_at,
        }


class FakeTwitch:
    def __init__(self) -> None:
        self.tokens: dict[str, UserToken] = {}
        self.users: dict[str, dict[str, str]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.sessions: dict[str, web.WebSocketResponse] = {}
        self.chat_sent: list[SentChat] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every HTTP call
        self.rewards: dict[str, dict[str, Any]] = {}  # custom rewards by id
        self.redemption_updates: list[tuple[str, str, str]] = []  # (reward, redemption, status)
        self.refreshes = 0
        self.live = False  # what Get Streams says of every channel
        self.refuse_websockets = False  # answer EventSub WebSocket handshakes with a 503
        self.chatters: list[dict[str, str]] = []  # Get Chatters: user_id, user_login, user_name
        self.chatters_unavailable = False  # answer Get Chatters with a 503
        self.redemption_updates_unavailable = False  # answer Update Redemption Status with a 503
        self.settled_redemptions: set[str] = set()  # no longer UNFULFILLED (updated, or by hand)
        self.welcomed = asyncio.Event()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Device Code flow: who will log in, after how many "authorization_pending" polls
        self.device_login: tuple[dict[str, str], list[str]] | None = None
        self.device_pending_polls = 1
        self.device_requests: list[dict[str, str]] = []

    # ----------------------------------------------------------------- life cycle
    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/oauth2/validate", self._validate)
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_post("/oauth2/device", self._device)
        app.router.add_get("/helix/users", self._get_users)
        app.router.add_get("/helix/streams", self._get_streams)
        app.router.add_get("/helix/chat/chatters", self._get_chatters)
        app.router.add_post("/helix/eventsub/subscriptions", self._subscribe)
        app.router.add_delete("/helix/eventsub/subscriptions", self._unsubscribe)
        app.router.add_post("/helix/chat/messages", self._send_chat)
        app.router.add_get("/helix/channel_points/custom_rewards", self._get_rewards)
        app.router.add_post("/helix/channel_points/custom_rewards", self._create_reward)
        app.router.add_patch("/helix/channel_points/custom_rewards", self._update_reward)
        app.router.add_patch(
            "/helix/channel_points/custom_rewards/redemptions", self._update_redemption
        )
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        for ws in list(self.sessions.values()):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/helix/"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def eventsub_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    # ----------------------------------------------------------------- setup
    def add_user(self, user: dict[str, str]) -> None:
        self.users[user["id"]] = user

    def add_user_token(
        self, access: str, refresh: str, user: dict[str, str], scopes: list[str]
    ) -> None:
        self.add_user(user)
        self.tokens[access] = UserToken(access, refresh, user, scopes)

    def expire(self, access: str) -> None:
        self.tokens[access].expired = True

    # ----------------------------------------------------------------- OAuth
    def _bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header.removeprefix("Bearer ").removeprefix("OAuth ")

    def _unauthorized(self) -> web.Response:
        body = {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}
        return web.json_response(body, status=401)

    def _user_token(self, request: web.Request) -> UserToken | None:
        token = self.tokens.get(self._bearer(request))
        return None if token is None or token.expired else token

    async def _validate(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path))
        bearer = self._bearer(request)
        if bearer == APP_TOKEN:
            body = {"client_id": CLIENT_ID, "scopes": [], "expires_in": 5000000}
            return web.json_response(body)
        token = self._user_token(request)
        if token is None:
            return web.json_response({"status": 401, "message": "invalid access token"}, status=401)
        return web.json_response(
            {
                "client_id": CLIENT_ID,
                "login": token.user["login"],
                "scopes": token.scopes,
                "user_id": token.user["id"],
                "expires_in": 14000,
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path))
        params = dict(request.query)
        params.update(dict(await request.post()))
        if params.get("grant_type") == "client_credentials":
            body = {"access_token": APP_TOKEN, "expires_in": 5000000, "token_type": "bearer"}
            return web.json_response(body)
        if params.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_token(params)
        if params.get("grant_type") == "refresh_token":
            old = next(
                (t for t in self.tokens.values() if t.refresh == params.get("refresh_token")), None
            )
            if old is None:
                body = {"status": 400, "message": "Invalid refresh token"}
                return web.json_response(body, status=400)
            self.refreshes += 1
            new = UserToken(
                f"{old.access}-r{self.refreshes}",
                f"{old.refresh}-r{self.refreshes}",
                old.user,
                old.scopes,
            )
            del self.tokens[old.access]
            self.tokens[new.access] = new
            return web.json_response(
                {
                    "access_token": new.access,
                    "refresh_token": new.refresh,
                    "scope": new.scopes,
                    "token_type": "bearer",
                    "expires_in": 14000,
                }
            )
        return web.json_response({"status": 400, "message": "unsupported grant"}, status=400)

    async def _device(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path))
        form = dict(await request.post())
        self.device_requests.append({k: str(v) for k, v in form.items()})
        if form.get("client_id") != CLIENT_ID:
            return web.json_response({"status": 400, "message": "invalid client"}, status=400)
        return web.json_response(
            {
                "device_code": "device-code-1",
                "expires_in": 1800,
                "interval": 0.05,  # Twitch says 5; a test need not wait that long
                "user_code": "ABCDEFGH",
                "verification_uri": "https://www.twitch.tv/activate?device-code=ABCDEFGH",
            }
        )

    def _device_token(self, params: dict[str, Any]) -> web.Response:
        if params.get("device_code") != "device-code-1" or self.device_login is None:
            return web.json_response({"status": 400, "message": "invalid device code"}, status=400)
        if self.device_pending_polls > 0:
            self.device_pending_polls -= 1
            body = {"status": 400, "message": "authorization_pending"}
            return web.json_response(body, status=400)
        user, scopes = self.device_login
        token = UserToken(f"dcf-access-{user['id']}", f"dcf-refresh-{user['id']}", user, scopes)
        self.add_user(user)
        self.tokens[token.access] = token
        return web.json_response(
            {
                "access_token": token.access,
                "refresh_token": token.refresh,
                "scope": scopes,
                "token_type": "bearer",
                "expires_in": 14000,
            }
        )

    # ----------------------------------------------------------------- Helix
    def _authorized(self, request: web.Request) -> bool:
        self.requests.append((request.method, request.path))
        return self._bearer(request) == APP_TOKEN or self._user_token(request) is not None

    async def _get_users(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        ids = request.query.getall("id", [])
        logins = [login.lower() for login in request.query.getall("login", [])]
        found = [u for u in self.users.values() if u["id"] in ids or u["login"].lower() in logins]
        return web.json_response(
            {
                "data": [
                    {
                        "id": u["id"],
                        "login": u["login"],
                        "display_name": u["name"],
                        "type": "",
                        "broadcaster_type": "",
                        "description": "",
                        "profile_image_url": "",
                        "offline_image_url": "",
                        "view_count": 0,
                        "created_at": "2016-12-14T20:32:28Z",
                    }
                    for u in found
                ]
            }
        )

    async def _get_streams(self, request: web.Request) -> web.Response:
        """Helix "Get Streams": one live stream per asked user id while ``live`` is set."""
        if not self._authorized(request):
            return self._unauthorized()
        found = [self.users[i] for i in request.query.getall("user_id", []) if i in self.users]
        return web.json_response(
            {
                "data": [
                    {
                        "id": f"stream-{u['id']}",
                        "user_id": u["id"],
                        "user_login": u["login"],
                        "user_name": u["name"],
                        "game_id": "509658",
                        "game_name": "Just Chatting",
                        "type": "live",
                        "title": "testing",
                        "tags": [],
                        "viewer_count": len(self.chatters),
                        "started_at": "2026-01-01T19:00:00Z",
                        "language": "en",
                        "thumbnail_url": "",
                        "tag_ids": [],
                        "is_mature": False,
                    }
                    for u in (found if self.live else [])
                ],
                "pagination": {},
            }
        )

    async def _get_chatters(self, request: web.Request) -> web.Response:
        """Helix "Get Chatters": a user token of ``moderator_id`` with moderator:read:chatters,
        pages of ``first`` (at most 1000) chained by ``after`` cursors, and ``total``."""
        token = self._user_token(request)
        self.requests.append((request.method, request.path))
        if token is None:
            return self._unauthorized()
        if self.chatters_unavailable:
            body = {"error": "Service Unavailable", "status": 503, "message": ""}
            return web.json_response(body, status=503)
        moderator = request.query.get("moderator_id", "")
        if token.user["id"] != moderator or "moderator:read:chatters" not in token.scopes:
            body = {"error": "Unauthorized", "status": 401, "message": "Missing scope"}
            return web.json_response(body, status=401)
        first = min(1000, int(request.query.get("first", "100")))
        start = int(request.query.get("after") or 0)
        page = self.chatters[start : start + first]
        more = start + first < len(self.chatters)
        return web.json_response(
            {
                "data": page,
                "pagination": {"cursor": str(start + first)} if more else {},
                "total": len(self.chatters),
            }
        )

    async def _subscribe(self, request: web.Request) -> web.Response:
        token = self._user_token(request)
        self.requests.append((request.method, request.path))
        if token is None:
            return self._unauthorized()
        body = await request.json()
        session_id = body["transport"].get("session_id")
        if session_id not in self.sessions:
            return web.json_response(
                {"error": "Bad Request", "status": 400, "message": "session does not exist"},
                status=400,
            )
        sub = Subscription(
            str(uuid.uuid4()),
            body["type"],
            body["version"],
            body["condition"],
            session_id,
            token.user["id"],
        )
        self.subscriptions[sub.id] = sub
        return web.json_response(
            {
                "data": [sub.body()],
                "total": len(self.subscriptions),
                "total_cost": 0,
                "max_total_cost": 10,
            },
            status=202,
        )

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        self.subscriptions.pop(request.query.get("id", ""), None)
        return web.Response(status=204)

    async def _send_chat(self, request: web.Request) -> web.Response:
        token = self._user_token(request)
        self.requests.append((request.method, request.path))
        if token is None:
            return self._unauthorized()
        body = await request.json()
        if body["sender_id"] != token.user["id"]:
            body_ = {"status": 403, "message": "sender_id must match the token's user"}
            return web.json_response(body_, status=403)
        self.chat_sent.append(
            SentChat(
                body["sender_id"],
                body["broadcaster_id"],
                body["message"],
                body.get("reply_parent_message_id"),
            )
        )
        return web.json_response(
            {"data": [{"message_id": str(uuid.uuid4()), "is_sent": True, "drop_reason": None}]}
        )

    async def _get_rewards(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        only_manageable = request.query.get("only_manageable_rewards", "").lower() == "true"
        rewards = [r for r in self.rewards.values() if r["_ours"] or not only_manageable]
        return web.json_response({"data": [_public(r) for r in rewards]})

    async def _create_reward(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        reward = {
            "id": str(uuid.uuid4()),
            "broadcaster_id": request.query.get("broadcaster_id"),
            "is_enabled": True,
            "is_user_input_required": False,
            "prompt": "",
            **body,
            "_ours": True,
        }
        self.rewards[reward["id"]] = reward
        return web.json_response({"data": [_public(reward)]})

    async def _update_reward(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        reward = self.rewards[request.query["id"]]
        reward.update(await request.json())
        return web.json_response({"data": [_public(reward)]})

    async def _update_redemption(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        if self.redemption_updates_unavailable:
            return web.json_response(
                {"error": "Service Unavailable", "status": 503, "message": ""}, status=503
            )
        status = (await request.json())["status"]
        reward_id = request.query["reward_id"]
        ids = request.query.getall("id")
        if any(redemption_id in self.settled_redemptions for redemption_id in ids):
            # Twitch updates only UNFULFILLED redemptions
            message = (
                "No redemptions with the specified IDs were found with a status of UNFULFILLED"
            )
            return web.json_response(
                {"error": "Not Found", "status": 404, "message": message}, status=404
            )
        for redemption_id in ids:
            self.redemption_updates.append((reward_id, redemption_id, status))
            self.settled_redemptions.add(redemption_id)
        return web.json_response({"data": []})

    # ----------------------------------------------------------------- EventSub WebSocket
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_websockets:  # an outage: the handshake fails, the client retries
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session_id = f"session-{next(self._ids)}"
        self.sessions[session_id] = ws
        old = request.query.get("reconnect")
        if old:  # Twitch carries the subscriptions over to the new session
            for sub in self.subscriptions.values():
                if sub.session_id == old:
                    sub.session_id = session_id
        await ws.send_str(
            json.dumps(
                self._frame(
                    "session_welcome",
                    {
                        "session": {
                            "id": session_id,
                            "status": "connected",
                            "connected_at": _now(),
                            "keepalive_timeout_seconds": 10,
                            "reconnect_url": None,
                            "recovery_url": None,
                        }
                    },
                )
            )
        )
        self.welcomed.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:  # Twitch closes with 4001 on any message
                    await ws.close(code=4001)
        finally:
            self.sessions.pop(session_id, None)
        return ws

    def _frame(
        self, message_type: str, payload: dict[str, Any], sub: Subscription | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "message_id": str(uuid.uuid4()),
            "message_type": message_type,
            "message_timestamp": _now(),
        }
        if sub is not None:
            metadata["subscription_type"] = sub.type
            metadata["subscription_version"] = sub.version
        return {"metadata": metadata, "payload": payload}

    def subscription_of(self, sub_type: str) -> Subscription:
        found = [
            s
            for s in self.subscriptions.values()
            if s.type == sub_type and s.session_id in self.sessions
        ]
        if not found:
            raise AssertionError(f"nobody subscribed to {sub_type}: {sorted(self.types())}")
        return found[-1]

    def types(self) -> set[str]:
        return {s.type for s in self.subscriptions.values() if s.session_id in self.sessions}

    async def notify(
        self,
        sub_type: str,
        _version: str,
        _condition: dict[str, str],
        event: dict[str, Any],
        *,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a notification to the session subscribed to ``sub_type``; returns the frame."""
        sub = self.subscription_of(sub_type)
        frame = self._frame("notification", {"subscription": sub.body(), "event": event}, sub)
        if message_id is not None:
            frame["metadata"]["message_id"] = message_id
        await self.sessions[sub.session_id].send_str(json.dumps(frame))
        return frame

    async def send_raw(self, session_id: str, frame: dict[str, Any]) -> None:
        await self.sessions[session_id].send_str(json.dumps(frame))

    async def keepalive(self) -> None:
        for ws in list(self.sessions.values()):
            await ws.send_str(json.dumps(self._frame("session_keepalive", {})))

    async def reconnect(self) -> None:
        """session_reconnect on every session, pointing at a fresh URL of this server."""
        for session_id, ws in list(self.sessions.items()):
            payload = {
                "session": {
                    "id": session_id,
                    "status": "reconnecting",
                    "keepalive_timeout_seconds": None,
                    "reconnect_url": f"{self.eventsub_url}?reconnect={session_id}",
                    "connected_at": _now(),
                }
            }
            await ws.send_str(json.dumps(self._frame("session_reconnect", payload)))

    async def drop(self) -> None:
        """Cut every socket without a close frame (a network failure)."""
        for ws in list(self.sessions.values()):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()

    async def revoke(self, sub_type: str, status: str = "authorization_revoked") -> None:
        sub = self.subscription_of(sub_type)
        sub.status = status
        frame = self._frame("revocation", {"subscription": sub.body()}, sub)
        await self.sessions[sub.session_id].send_str(json.dumps(frame))
        del self.subscriptions[sub.id]


def _public(reward: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reward.items() if not k.startswith("_")}
