"""The Twitch adapter (twitchio 3): one channel, chat and channel events over EventSub
WebSocket, replies through Helix "Send Chat Message" as the bot account.

Accounts and tokens: the bot account (``platforms.twitch.bot_id``) reads and writes chat; the
broadcaster's account (the owner of ``platforms.twitch.channel``) authorizes the channel
events (subs, bits, redemptions, bans). Both tokens come from the vault (``bot.py auth
twitch``); twitchio's own token file is never read or written (``load_tokens`` and
``save_tokens`` are overridden) and a refreshed token goes straight back into the vault.
Without the broadcaster's token the bot still runs chat, and says once which events it lacks.

Ordering: twitchio dispatches each notification as its own task. Here every payload goes into
one queue, in the order the socket delivered it, and one task reads it into an ``OrderedFeed``
(``platforms/feed.py``): one viewer's events are handled in that order, so a chat line and its
deletion are never handled the wrong way round, while different viewers' run at once (the
writer commits a busy chat in groups); a stream going online or offline waits for everything
before it, and nothing after it starts until it is done.

Falling behind: twitchio hands each notification to ``Client.dispatch``, a synchronous call, and
reads on; its socket must keep being read (a keepalive missed for ~15 s makes it reconnect to
a new EventSub session, and what Twitch sent to the old one is lost). So the queue is a bounded
``Inbox`` (``platforms/inbox.py``) that, when full, drops only plain chat lines (no bits, no
channel-point reward); every other event goes in. The count is in ``status()``, and a warning
names it at most once a minute.

Stopping: nothing more goes into the inbox; what is in it and in the feed is handled (and
answered: the client closes last) within the grace, the rest cut and counted in one warning
(``platforms/stopping.py``): an event Twitch delivered is never delivered again.

Connection trouble is twitchio's to handle (keepalive timeouts and dropped sockets reconnect
and resubscribe; ``session_reconnect`` moves to the new URL; a 401 refreshes the token and
retries); a revoked subscription is logged as one line naming what stopped and why.

Who is watching: EventSub has no join/part, so while the stream is live the adapter reads
Helix "Get Chatters" every ``chatters_every`` (as the broadcaster, or as the bot if it is a
moderator with ``moderator:read:chatters``) and turns the difference from the last reading
into ``Presence`` and ``PresenceLeft`` events: the watch-time payouts and the drop-in award
read them like the console's ``/join`` and ``/part``. Offline, nobody is watching.

Outgoing chat: Twitch allows 20 messages per 30 s to a bot that is not a moderator in the
channel, 100 to a moderator or the broadcaster. ``capabilities`` starts at the lower figure and
rises when the bot's own messages come back with a moderator badge.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import twitchio
from twitchio import eventsub
from twitchio.eventsub import websockets as eventsub_websockets
from twitchio.exceptions import HTTPException, InvalidTokenException
from twitchio.http import Route

from pixelbot.clock import Clock
from pixelbot.config.model import TwitchPlatform as TwitchSettings
from pixelbot.config.redeems import RedeemSettings
from pixelbot.errors import PlatformAuthError, PlatformError, SettlementRefused
from pixelbot.events import (
    ChatMessage,
    Event,
    Presence,
    PresenceLeft,
    RewardRedemption,
    StreamOffline,
    StreamOnline,
    Viewer,
)
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.feed import OrderedFeed, event_key
from pixelbot.platforms.inbox import INBOX_LIMIT, Inbox, InboxClosed
from pixelbot.platforms.stopping import GRACE, stop_events
from pixelbot.platforms.twitch_auth import PLATFORM
from pixelbot.platforms.twitch_events import (
    event_from_payload,
    plain_chat,
    redemption,
    roles_from_badges,
)
from pixelbot.platforms.twitch_replay import Recorder
from pixelbot.platforms.twitch_rewards import settle_redemption, sync_rewards
from pixelbot.vault import Token, TokenVault

__all__ = ["MODERATOR_RATE", "VIEWER_RATE", "TwitchAdapter"]

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(seconds=30)
VIEWER_RATE = 20  # messages per 30 s for a bot that is not a moderator
MODERATOR_RATE = 100  # ... and for a moderator or the broadcaster
_FEED_CHUNK = 500  # presence events fed at once

# (subscription, scope the authorizing account needs, what the streamer loses without it)
_CHANNEL_EVENTS: list[tuple[str, str, str]] = [
    ("follow", "moderator:read:followers", "follows"),
    ("subscribe", "channel:read:subscriptions", "subs"),
    ("resub", "channel:read:subscriptions", "resubs"),
    ("gift", "channel:read:subscriptions", "gifted subs"),
    ("cheer", "bits:read", "cheers"),
    ("raid", "", "raids"),
    ("online", "", "stream online"),
    ("offline", "", "stream offline"),
    ("ban", "moderator:manage:banned_users", "bans and timeouts"),
    ("redeem", "channel:read:redemptions", "channel-point redemptions"),
]


def _payload(kind: str, broadcaster: str) -> Any:  # an eventsub.SubscriptionPayload
    b = {"broadcaster_user_id": broadcaster}
    match kind:
        case "follow":
            return eventsub.ChannelFollowSubscription(**b, moderator_user_id=broadcaster)
        case "subscribe":
            return eventsub.ChannelSubscribeSubscription(**b)
        case "resub":
            return eventsub.ChannelSubscribeMessageSubscription(**b)
        case "gift":
            return eventsub.ChannelSubscriptionGiftSubscription(**b)
        case "cheer":
            return eventsub.ChannelCheerSubscription(**b)
        case "raid":
            return eventsub.ChannelRaidSubscription(to_broadcaster_user_id=broadcaster)
        case "online":
            return eventsub.StreamOnlineSubscription(**b)
        case "offline":
            return eventsub.StreamOfflineSubscription(**b)
        case "ban":
            return eventsub.ChannelBanSubscription(**b)
        case "redeem":
            return eventsub.ChannelPointsRedeemAddSubscription(**b)
    raise ValueError(kind)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return text


LOST_SETTLE_SECONDS = 5.0  # at a stop, to cancel the redemptions the bot did not handle


class _Client(twitchio.Client):
    """twitchio's client with its token file replaced by the vault and its event dispatch
    replaced by one ordered queue."""

    def __init__(self, adapter: TwitchAdapter, **options: Any) -> None:
        super().__init__(**options)
        self._pixel = adapter  # (twitchio's own ``_adapter`` is its web server)

    async def load_tokens(self, path: str | None = None, /) -> None:
        await self._pixel._load_tokens(self)

    async def save_tokens(self, path: str | None = None, /) -> None:
        return None  # every refreshed token was stored the moment it came (event_token_refreshed)

    def dispatch(self, event: str, payload: Any | None = None) -> None:
        self._pixel._inbox.put((event, payload))  # (a full inbox drops a plain chat line)


class TwitchAdapter:
    """The Platform for one Twitch channel."""

    name = PLATFORM

    def __init__(
        self,
        settings: TwitchSettings,
        vault: Callable[[], TokenVault],
        clock: Clock,
        *,
        redeems: Mapping[str, RedeemSettings] | None = None,
        inbox_limit: int = INBOX_LIMIT,
        grace: float = GRACE,
    ) -> None:
        """``inbox_limit``: events received and not yet taken before plain chat lines are
        dropped (tests lower it). ``grace``: seconds the events received get to finish when
        the adapter stops (``platforms/stopping.py``)."""
        self._grace = grace
        self._settings = settings
        self._open_vault = vault  # opened at start: a key problem is a start problem
        self._vault: TokenVault | None = None
        self._clock = clock
        self.default_channel = (settings.channel or "").lower()
        self.capabilities = Capabilities(
            max_message_length=500,
            long_messages="split",
            mention_style="at_name",
            native_rewards=True,
            messages_per_window=VIEWER_RATE,
            rate_window=RATE_WINDOW,
        )
        self._inbox: Inbox[tuple[str, Any]] = Inbox(
            PLATFORM,
            clock,
            limit=inbox_limit,
            sheddable=lambda item: plain_chat(item[1]),
            kept_when_lost=lambda item: redemption(item[1]),
        )
        self._client: _Client | None = None
        self._pump: asyncio.Task[None] | None = None
        self._feed: OrderedFeed | None = None
        self._sink: EventSink | None = None
        self._secrets: list[str] = []
        self._scopes: dict[str, tuple[str, ...]] = {}
        self._connected = False
        self._last_event_at: datetime | None = None
        self._down_since: datetime | None = None  # a socket was seen closed (twitchio retries)
        self._detail = ""
        self.bot_id = settings.bot_id or ""
        self.broadcaster_id = ""
        self._recorder: Recorder | None = None
        self._redeems = dict(redeems or {})
        self._reward_keys: dict[str, str] = {}  # Twitch reward id -> redeem key
        self.revoked: list[str] = []  # "channel.follow: authorization_revoked"
        # Watching: the account whose token reads the chatter list (None: no such token),
        # whether the stream is live, and who was in the chatter list at the last reading.
        self._chatters_reader: str | None = None
        self._live = False
        self._chatters: dict[str, Viewer] = {}
        self._chatters_lock = asyncio.Lock()
        self._chatters_wake = asyncio.Event()
        self._chatters_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle
    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        settings = self._settings
        Route.BASE = settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/"
        Route.ID_BASE = (
            settings.auth_url if settings.auth_url.endswith("/") else settings.auth_url + "/"
        )
        eventsub_websockets.WSS = settings.eventsub_url
        if settings.record:
            self._recorder = Recorder(Path(settings.record))
            self._recorder.install()
        self._vault = self._open_vault()
        try:
            tokens = {t.account_id: t for t in await self._vault.tokens(PLATFORM)}
        except BaseException:
            await self.stop()
            raise
        if self.bot_id not in tokens:
            await self.stop()
            raise PlatformAuthError(
                f"twitch: no token for the bot account (user id {self.bot_id}); "
                "run `python bot.py auth twitch`"
            )
        self._secrets = [s for t in tokens.values() for s in (t.access_token, t.refresh_token) if s]
        client_id = settings.client_id.get_secret_value() if settings.client_id else ""
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        self._client = _Client(
            self,
            client_id=client_id,
            client_secret=secret,
            bot_id=self.bot_id,
            fetch_client_user=False,
        )
        self._feed = OrderedFeed(PLATFORM)
        self._inbox.reopen()
        self._pump = asyncio.create_task(self._pump_events(), name="twitch-events")
        try:
            await self._client.login(load_tokens=True, save_tokens=False)
            await self._subscribe_all(tokens)
        except InvalidTokenException:
            await self.stop()
            raise PlatformAuthError(
                "twitch: a stored token was revoked or expired and cannot be refreshed; "
                "run `python bot.py auth twitch` again"
            ) from None
        except HTTPException as exc:
            await self.stop()
            raise PlatformError(
                f"twitch: {_redact(str(exc.extra.get('message') or exc), self._secrets)} "
                f"(HTTP {exc.status})"
            ) from None
        except BaseException:
            await self.stop()
            raise
        self._connected = True
        if self._chatters_reader is not None and self._settings.chatters_every > timedelta(0):
            self._chatters_task = asyncio.create_task(
                self._watch_chatters(), name="twitch-chatters"
            )

    async def _load_tokens(self, client: _Client) -> None:
        """twitchio's token loading, from the vault: each token is validated (and refreshed
        if it has expired) by twitchio; the scopes Twitch reports are kept for the checks."""
        assert self._vault is not None
        for token in await self._vault.tokens(PLATFORM):
            if not token.refresh_token:
                log.warning("twitch: the token of user %s has no refresh token", token.account_id)
            found = await client.add_token(token.access_token, token.refresh_token or "")
            self._scopes[str(found.user_id)] = tuple(str(s) for s in found.scopes)

    async def _subscribe_all(self, tokens: dict[str, Token]) -> None:
        assert self._client is not None
        channel = self._settings.channel or ""
        users = await self._client.fetch_users(logins=[channel])
        if not users:
            raise PlatformError(
                f"twitch: there is no channel named {channel!r} (platforms.twitch.channel)"
            )
        self.broadcaster_id = str(users[0].id)
        if self.bot_id == self.broadcaster_id:
            self._set_rate(MODERATOR_RATE)
        bot_scopes = self._scopes.get(self.bot_id, ())
        for scope in ("user:read:chat", "user:write:chat"):
            if scope not in bot_scopes:
                raise PlatformAuthError(
                    f"twitch: the bot's token lacks the scope {scope}; "
                    "run `python bot.py auth twitch` with it",
                    scope=scope,
                )
        chat = {"broadcaster_user_id": self.broadcaster_id, "user_id": self.bot_id}
        await self._client.subscribe_websocket(
            eventsub.ChatMessageSubscription(**chat), token_for=self.bot_id
        )
        await self._client.subscribe_websocket(
            eventsub.ChatMessageDeleteSubscription(**chat), token_for=self.bot_id
        )
        for account in (self.broadcaster_id, self.bot_id):  # the bot, if it is a moderator
            if "moderator:read:chatters" in self._scopes.get(account, ()):
                self._chatters_reader = account
                break
        self._live = await self._stream_is_live()
        if self.broadcaster_id not in tokens:
            self._detail = (
                "no token for the broadcaster's account: follows, subs, bits, raids, bans and "
                "channel points are not received (run `python bot.py auth twitch` as the streamer)"
            )
            log.warning("twitch: %s", self._detail)
            return
        scopes = self._scopes.get(self.broadcaster_id, ())
        missing: list[str] = []
        for kind, scope, what in _CHANNEL_EVENTS:
            if (
                scope
                and scope not in scopes
                and not (kind == "redeem" and "channel:manage:redemptions" in scopes)
            ):
                missing.append(f"{what} (needs {scope})")
                continue
            await self._client.subscribe_websocket(
                _payload(kind, self.broadcaster_id), token_for=self.broadcaster_id
            )
        if any(redeem.twitch_reward for redeem in self._redeems.values()):
            if "channel:manage:redemptions" in scopes:
                self._reward_keys = await sync_rewards(
                    self._client._http, self.broadcaster_id, self._redeems
                )
            else:
                missing.append("channel-point rewards (needs channel:manage:redemptions)")
        if self._chatters_reader is None:
            missing.append("watch-time presence (needs moderator:read:chatters)")
        if missing:
            self._detail = "the broadcaster's token lacks scopes for: " + ", ".join(missing)
            log.warning("twitch: %s", self._detail)

    async def redeems_changed(self, redeems: Mapping[str, RedeemSettings]) -> list[str]:
        """After ``!reload``: make the channel-point rewards match the new redeems (a changed
        cost or prompt, a new reward, one no redeem names any more disabled)."""
        had_rewards = bool(self._reward_keys)
        self._redeems = dict(redeems)
        if self._client is None or not self.broadcaster_id:
            return []  # not connected: the sync at the next start uses the new redeems
        if not had_rewards and not any(r.twitch_reward for r in self._redeems.values()):
            return []
        if "channel:manage:redemptions" not in self._scopes.get(self.broadcaster_id, ()):
            return ["twitch: channel-point rewards were not synced (the broadcaster's token "
                    "lacks channel:manage:redemptions)"]  # fmt: skip
        try:
            self._reward_keys = await sync_rewards(
                self._client._http, self.broadcaster_id, self._redeems
            )
        except Exception as exc:  # Helix refused or is unreachable: the old rewards stay
            log.warning("twitch: channel-point rewards could not be synced: %s", exc)
            return [f"twitch: channel-point rewards could not be synced: {exc}"]
        log.info("twitch: channel-point rewards synced with the reloaded config")
        return []

    async def stop(self) -> None:
        self._connected = False
        if self._chatters_task is not None:
            self._chatters_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chatters_task
            self._chatters_task = None
        # No new event is taken; those received are handled (their answers still have the
        # client) within the grace, then cut (``platforms/stopping.py``).
        try:
            await stop_events(
                PLATFORM,
                feed=self._feed,
                reader=self._pump,
                inbox=self._inbox,
                grace=self._grace,
                lost="Twitch does not send an event again",
            )
        finally:
            self._pump = self._feed = None
            try:
                await self._cancel_lost_redemptions()
            finally:
                await self._disconnect()

    async def _cancel_lost_redemptions(self) -> None:
        """Redemptions the stop left unhandled (they came while stopping, or waited past the
        grace) were never logged nor queued, and Twitch does not send them again: cancel them
        while the client is still connected, so Twitch returns the viewers' channel points.
        (Twitch moves a redemption out of UNFULFILLED once: it cannot be settled twice.)"""
        lost, self._inbox.lost = self._inbox.lost, []
        deadline = asyncio.get_running_loop().time() + LOST_SETTLE_SECONDS
        for _name, payload in lost:
            try:
                if self._client is None:
                    raise PlatformError("twitch: not connected")
                async with asyncio.timeout_at(deadline):
                    await settle_redemption(
                        self._client._http,
                        self.broadcaster_id,
                        payload.reward.id,
                        payload.id,
                        False,
                    )
            except Exception as exc:
                log.error(
                    "twitch: the redemption %s of %s came as the bot stopped and could not be "
                    "canceled (%s); refund it by hand on Twitch",
                    payload.id,
                    payload.user.name,
                    exc,
                )
            else:
                log.warning(
                    "twitch: the redemption %s of %s came as the bot stopped: canceled, Twitch "
                    "returns the channel points",
                    payload.id,
                    payload.user.name,
                )

    async def _disconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
        if self._vault is not None:
            await self._vault.close()
            self._vault = None
        if self._recorder is not None:
            self._recorder.uninstall()
            self._recorder = None

    # ------------------------------------------------------------------ incoming
    async def _pump_events(self) -> None:
        while True:
            try:
                name, payload = await self._inbox.get()
            except InboxClosed:  # stopping, and everything received was handed over
                return
            try:
                await self._handle(name, payload)
            except Exception:
                log.exception("twitch: could not handle %s", name)

    async def _handle(self, name: str, payload: Any) -> None:
        if name == "token_refreshed":
            await self._store_refreshed(payload)
            return
        if name == "subscription_revoked":
            status = getattr(payload.status, "value", payload.status)
            kind = getattr(payload.type, "value", payload.type)
            line = f"{kind}: {status}"
            self.revoked.append(line)
            self._detail = f"Twitch stopped sending {line}"
            log.error("twitch: Twitch revoked the subscription %s; reauthorize the account", line)
            return
        if name == "websocket_welcome":
            self._connected = True
            return
        event = event_from_payload(payload, self._clock.now())
        if event is None:
            return
        if isinstance(event, ChatMessage) and event.viewer.platform_user_id == self.bot_id:
            self._own_message(payload)
            return  # the bot's own lines earn nothing and run no commands
        if isinstance(event, RewardRedemption):
            key = self._reward_keys.get(event.reward)
            if key is None:
                return  # a reward of the streamer's own, not one of the bot's redeems
            event = dataclasses.replace(event, reward=key)
        self._last_event_at = self._clock.now()
        assert self._feed is not None
        await self._feed.submit(
            event_key(event), lambda: self._deliver(event), f"{event.kind} {event.id}"
        )

    async def _deliver(self, event: Event) -> None:
        """Feed one event; a change of stream state also starts or ends the chatter list."""
        await self.feed(event)
        if isinstance(event, StreamOnline):
            self._live = True
            self._chatters_wake.set()  # read who is there now, not a minute later
        elif isinstance(event, StreamOffline):
            self._live = False
            await self._everyone_left()

    async def feed(self, event: Event) -> None:
        assert self._sink is not None
        await self._sink(event)

    def _own_message(self, payload: Any) -> None:
        roles = roles_from_badges([badge.set_id for badge in payload.badges])
        moderator = bool(roles & {"moderator", "broadcaster"})
        self._set_rate(MODERATOR_RATE if moderator else VIEWER_RATE)

    def _set_rate(self, per_window: int) -> None:
        if self.capabilities.messages_per_window != per_window:
            self.capabilities = Capabilities(
                **{**self.capabilities.__dict__, "messages_per_window": per_window}
            )

    async def _store_refreshed(self, payload: Any) -> None:
        assert self._vault is not None
        old = await self._vault.get(PLATFORM, str(payload.user_id))
        scopes = tuple(str(s) for s in payload.scopes) or (old.scopes if old else ())
        expires = self._clock.now() + timedelta(seconds=int(payload.expires_in or 0))
        self._secrets += [payload.token, payload.refresh_token]
        await self._vault.store(
            Token(
                PLATFORM,
                str(payload.user_id),
                payload.token,
                payload.refresh_token,
                scopes,
                expires,
            )
        )
        log.info("twitch: refreshed the token of user %s", payload.user_id)

    # ------------------------------------------------------------------ who is watching
    async def _stream_is_live(self) -> bool:
        """Whether the channel is live now (Helix Get Streams): a bot started mid-stream
        counts watchers at once instead of waiting for the next stream.online."""
        assert self._client is not None
        try:
            async for _stream in self._client.fetch_streams(
                user_ids=[self.broadcaster_id], type="live", first=1
            ):
                return True
        except HTTPException as exc:
            log.warning("twitch: could not tell whether the stream is live (HTTP %s)", exc.status)
        return False

    async def _watch_chatters(self) -> None:
        every = self._settings.chatters_every.total_seconds()
        failing = False
        while True:
            if self._live:
                try:
                    await self.read_chatters()
                except Exception as exc:  # Helix down or refusing: try again next time
                    if not failing:
                        log.warning("twitch: could not read the chatter list: %s", exc)
                    failing = True
                else:
                    failing = False
            self._chatters_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._chatters_wake.wait(), every)

    async def read_chatters(self) -> None:
        """Read the chatter list once and announce who came and who went since the last
        reading (the watcher does this every ``chatters_every`` while live)."""
        if self._client is None or self._chatters_reader is None:
            return
        async with self._chatters_lock:  # one reading at a time, applied in order
            channel = self._client.create_partialuser(self.broadcaster_id)
            found = await channel.fetch_chatters(moderator=self._chatters_reader, first=1000)
            now: dict[str, Viewer] = {}
            async for user in found.users:
                uid = str(user.id)
                if uid != self.bot_id:
                    login = user.name or uid
                    now[uid] = Viewer(PLATFORM, uid, login, user.display_name or login)
            if not self._live:
                return  # the stream ended while the list was on its way
            came = [viewer for uid, viewer in now.items() if uid not in self._chatters]
            went = [viewer for uid, viewer in self._chatters.items() if uid not in now]
            self._chatters = now
            at = self._clock.now()
            stamp = at.isoformat()
            arrivals = [
                Presence(
                    id=f"chatters:{viewer.platform_user_id}:{stamp}",
                    platform=PLATFORM,
                    occurred_at=at,
                    viewer=viewer,
                )
                for viewer in came
            ]
            await self._feed_all(arrivals)
            await self._feed_all([self._left(viewer, at) for viewer in went])

    async def _feed_all(self, events: Sequence[Event]) -> None:
        """Feed many events at once, so the writer commits them in a few groups (a channel
        going live with thousands of chatters), not one commit after another."""
        for start in range(0, len(events), _FEED_CHUNK):
            await asyncio.gather(*(self.feed(e) for e in events[start : start + _FEED_CHUNK]))

    async def _everyone_left(self) -> None:
        async with self._chatters_lock:
            gone, self._chatters = self._chatters, {}
            at = self._clock.now()
            await self._feed_all([self._left(viewer, at) for viewer in gone.values()])

    @staticmethod
    def _left(viewer: Viewer, at: datetime) -> Event:
        return PresenceLeft(
            id=f"chatters-left:{viewer.platform_user_id}:{at.isoformat()}",
            platform=PLATFORM,
            occurred_at=at,
            viewer=viewer,
        )

    # ------------------------------------------------------------------ outgoing
    async def send(self, channel: str, text: str) -> None:
        await self._post(text, None)

    async def reply(self, to: ChatMessage, text: str) -> None:
        await self._post(text, to.id)

    async def _post(self, text: str, reply_to: str | None) -> None:
        if self._client is None:
            raise PlatformError("twitch: not connected")
        channel = self._client.create_partialuser(self.broadcaster_id)
        try:
            await channel.send_message(
                text, self.bot_id, token_for=self.bot_id, reply_to_message_id=reply_to
            )
        except twitchio.MessageRejectedError as exc:
            log.warning("twitch: Twitch dropped a message: %s", exc)

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None:
        """Mark a channel-point redemption FULFILLED, or CANCELED (Twitch refunds it)."""
        if self._client is None:
            raise PlatformError("twitch: not connected")
        reward_id = next((rid for rid, key in self._reward_keys.items() if key == redeem), None)
        if reward_id is None:
            raise SettlementRefused(f"twitch: no channel-point reward for the redeem {redeem!r}")
        try:
            await settle_redemption(
                self._client._http, self.broadcaster_id, reward_id, redemption_id, fulfilled
            )
        except HTTPException as exc:
            # Twitch updates only UNFULFILLED redemptions: a 400/404 says it was settled
            # already (or is unknown); anything else (5xx, a rate limit) may pass.
            if exc.status in (400, 404):
                raise SettlementRefused(f"twitch: {exc.extra.get('message') or exc}") from exc
            raise

    # ------------------------------------------------------------------ status
    def status(self) -> PlatformStatus:
        """Connected while every EventSub socket is open. twitchio reconnects a dropped socket
        by itself and tells nothing until the new one is welcomed, so the sockets are looked
        at here: a drop shows as retrying from the first time it is seen."""
        up = self._connected and all(socket.connected for socket in self._sockets())
        if up:
            self._down_since = None
        elif self._client is not None and self._down_since is None:
            self._down_since = self._clock.now()
        detail = self._detail or ("" if up else "reconnecting to Twitch EventSub")
        detail = "; ".join(part for part in (detail, self._inbox.detail()) if part)
        return PlatformStatus(
            up, retrying_since=self._down_since, last_event_at=self._last_event_at, detail=detail
        )

    def _sockets(self) -> list[Any]:
        if self._client is None:
            return []
        websockets: dict[str, dict[str, Any]] = getattr(self._client, "_websockets", {})
        return [socket for sessions in websockets.values() for socket in sessions.values()]

    @property
    def inbox(self) -> Inbox[tuple[str, Any]]:
        """What the library has received and the adapter not yet taken (``platforms/inbox.py``)."""
        return self._inbox

    @property
    def client(self) -> twitchio.Client | None:
        return self._client
