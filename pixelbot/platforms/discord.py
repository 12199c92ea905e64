"""The Discord adapter (discord.py 2): one server, chat in its configured channels, slash
commands, and presence in one voice channel.

What discord.py does here: the gateway (identify, heartbeats, resume after a drop or an op 7
Reconnect, backoff), REST with Discord's rate limits, and its caches. What it does not: the
meaning of an event. Each dispatch the bot acts on is taken as the raw payload discord.py has
just decoded (its parser table is wrapped, so discord.py's own handling still runs first) and
parsed by ``discord_events``, the same code ``bot.py replay discord`` uses.

Ordering: dispatches are parsed in the order the gateway sent them, by one task, and handed to
an ``OrderedFeed`` (``platforms/feed.py``): one member's messages, slash commands and voice
changes are handled in that order, different members' at once (the writer commits a busy
server in groups).

Falling behind: discord.py reads the gateway in one loop that awaits ``received_message`` for
each frame before it reads the next, and the wrapped parsers run inside it. After each frame
that loop now also awaits room in the adapter's bounded ``Inbox`` (``platforms/inbox.py``): when
the bot is behind, discord.py stops reading and Discord holds the rest; nothing is dropped.
(Heartbeats go on from discord.py's own thread; a pause past its heartbeat timeout closes the
socket, and discord.py resumes the session, Discord replaying what was sent meanwhile.)

Stopping: nothing more goes into the inbox (discord.py's reading is let go); what is in it
and in the feed is handled, interactions answered, within the grace, the rest cut and counted
(``platforms/stopping.py``). A restart cannot get them back: the new process identifies anew,
and Discord replays missed dispatches only to a session resumed (one closed with code 1000, as
discord.py closes, cannot be; resuming across processes would also need discord.py internals).

Slash commands are generated from the command registry (``discord_commands``) and registered
on the server at start, only when they changed (the hash of the last sync is kept in the
vault). An interaction is answered at once with "thinking" (Discord allows 3 s), the command
runs as if typed, and its first reply replaces the thinking message; later ones follow up.

Mentions: every message sent says which mentions may ping (``allowed_mentions``): only the
viewer answered, never @everyone, @here or a role, whatever the text holds.

Intents: server events (``guilds``), server messages, message content (privileged: switch it
on in the developer portal), voice states when a voice channel is configured, and server
members (privileged) only when ``members_intent`` is set. If Discord refuses the privileged
intents (close code 4014), the bot says so in one line and runs on without them: slash
commands and chat earning still work, prefix commands do not (every message text is empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from pixelbot.clock import Clock
from pixelbot.config.model import DiscordPlatform as DiscordSettings
from pixelbot.domain.command_specs import CommandCatalog
from pixelbot.errors import PlatformAuthError, PlatformError, VaultError
from pixelbot.events import ChatMessage, Event
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.discord_commands import commands_digest, slash_payload
from pixelbot.platforms.discord_events import (
    PLATFORM,
    CompletionRequest,
    FrameError,
    GuildView,
    SlashCall,
    parse_dispatch,
)
from pixelbot.platforms.discord_replay import RECORDED, Recorder
from pixelbot.platforms.feed import OrderedFeed, event_key
from pixelbot.platforms.inbox import INBOX_LIMIT, Inbox, InboxClosed
from pixelbot.platforms.stopping import GRACE, stop_events
from pixelbot.vault import Token, TokenVault

__all__ = ["MESSAGE_CONTENT_OFF", "RATE", "RATE_WINDOW", "DiscordAdapter", "view_from_settings"]

log = logging.getLogger(__name__)

RATE, RATE_WINDOW = 5, timedelta(seconds=5)  # messages per channel (Discord's documented bucket)
READY_TIMEOUT = 60.0
MESSAGE_CONTENT_OFF = (
    "discord: Discord refused the privileged intents: switch on 'Message Content Intent'"
    "{members} on the Bot page of the developer portal. Until then every message reaches the "
    "bot with its text empty: prefix commands (!points) do nothing (chat still earns; slash "
    "commands work)"
)
# Interaction callback types (documented "Interaction Callback Type")
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, AUTOCOMPLETE_RESULT = 4, 5, 8
EPHEMERAL = 1 << 6
SLASH_HASH_ACCOUNT = "slash-commands:{guild}"  # the vault row holding the last sync's hash


def view_from_settings(settings: DiscordSettings, prefix: str) -> GuildView:
    roles = settings.roles
    return GuildView(
        guild_id=str(settings.guild_id or ""),
        channels=frozenset(str(c) for c in settings.channels),
        voice_channel=str(settings.voice_channel) if settings.voice_channel else None,
        roles={
            "moderator": frozenset(str(r) for r in roles.moderator),
            "vip": frozenset(str(r) for r in roles.vip),
            "subscriber": frozenset(str(r) for r in roles.subscriber),
        },
        prefix=prefix,
    )


@dataclass
class _Pending:
    """An interaction being answered: the message it stands for, and how far it got."""

    call: SlashCall
    answered: bool = False


# The interaction whose command is running in this task (its replies go to the interaction)
_answering: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
    "discord_answering", default=None
)


# discord.py warns once that it cannot play audio (PyNaCl, davey): the bot only counts who is
# in a voice channel, it never joins one.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class _Client(discord.Client):
    """discord.py's client with the parsers of the events the bot uses wrapped: discord.py
    updates its caches as usual, then the raw payload goes to the adapter."""

    def __init__(
        self,
        adapter: DiscordAdapter,
        intents: discord.Intents,
        guild_ready_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            heartbeat_timeout=heartbeat_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
        )
        self._pixel = adapter
        parsers: dict[str, Callable[[Any], None]] = self._connection.parsers
        for kind in RECORDED:
            parsers[kind] = self._wrap(kind, parsers.get(kind))

    def _wrap(self, kind: str, original: Callable[[Any], None] | None) -> Callable[[Any], None]:
        def parse(data: Any) -> None:
            if original is not None:
                original(data)
            sequence = self.ws.sequence if self.ws is not None else None
            self._pixel._received(kind, sequence, data)

        return parse

    # discord.py keeps its gateway connection in ``ws`` (a new one at each reconnect): each is
    # made to wait for room in the inbox after every frame it reads.
    _gateway: DiscordWebSocket | None = None

    @property
    def ws(self) -> DiscordWebSocket:
        return self._gateway  # type: ignore[return-value]  # (None until connected, as upstream)

    @ws.setter
    def ws(self, gateway: DiscordWebSocket | None) -> None:
        if gateway is not None:
            _pace(gateway, self._pixel._inbox.room)
        self._gateway = gateway

    async def on_ready(self) -> None:
        self._pixel._gateway_up()

    async def on_resumed(self) -> None:
        self._pixel._gateway_up()

    async def on_disconnect(self) -> None:
        self._pixel._gateway_down()


def _pace(gateway: DiscordWebSocket, room: Callable[[], Awaitable[None]]) -> None:
    """Make the gateway's reader wait for ``room`` after each frame it has handled.

    ``DiscordWebSocket.poll_event`` reads one frame and awaits ``received_message`` on it
    (which updates the sequence and runs the parsers, ours included) before it reads again:
    waiting at the end of that call holds the reader without touching anything discord.py
    keeps, and the frame just read is already in the inbox."""
    received = gateway.received_message

    async def received_message(msg: Any, /) -> None:
        await received(msg)
        await room()

    gateway.received_message = received_message  # type: ignore[method-assign]


class DiscordAdapter:
    """The Platform for one Discord server."""

    name = PLATFORM

    def __init__(
        self,
        settings: DiscordSettings,
        vault: Callable[[], TokenVault],
        clock: Clock,
        *,
        prefix: str,
        guild_ready_timeout: float = 2.0,
        inbox_limit: int = INBOX_LIMIT,
        heartbeat_timeout: float = 60.0,
        grace: float = GRACE,
    ) -> None:
        """``guild_ready_timeout``: how long discord.py waits after the last server arrives
        before it calls itself ready (its default; tests shorten it). ``inbox_limit``: events
        received and not yet taken before discord.py's reading waits. ``heartbeat_timeout``:
        how long discord.py's gateway may go without reading before it reconnects and resumes
        (its default). Tests lower both. ``grace``: seconds the events received get to finish
        when the adapter stops (``platforms/stopping.py``)."""
        self._grace = grace
        self._settings = settings
        self._guild_ready_timeout = guild_ready_timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._open_vault = vault
        self._vault: TokenVault | None = None
        self._clock = clock
        self.view = view_from_settings(settings, prefix)
        self.default_channel = str(settings.channels[0]) if settings.channels else ""
        self.capabilities = Capabilities(
            max_message_length=2000,
            long_messages="split",
            mention_style="user_id_tag",
            messages_per_window=RATE,
            rate_window=RATE_WINDOW,
            threads_replies=True,
        )
        self._catalog: CommandCatalog | None = None
        self._client: _Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._feed: OrderedFeed | None = None
        self._inbox: Inbox[tuple[str, Any]] = Inbox(PLATFORM, clock, limit=inbox_limit)
        self._sink: EventSink | None = None
        self._recorder: Recorder | None = None
        self._pending: dict[str, _Pending] = {}
        self._connected = False
        self._retrying_since: datetime | None = None
        self._last_event_at: datetime | None = None
        self._detail = ""
        self.application_id = ""
        self.synced = False  # whether this start registered the slash commands
        self.message_content = True  # False: Discord refused the privileged intents

    def use_commands(self, catalog: CommandCatalog) -> None:
        """The commands to offer as slash commands (the app gives them before ``start``)."""
        self._catalog = catalog

    async def commands_changed(self) -> None:
        if self._client is not None:
            await self._sync_commands()  # (sent only if the list differs from the last sync)

    # ------------------------------------------------------------------ life cycle
    def _intents(self, privileged: bool) -> discord.Intents:
        intents = discord.Intents.none()
        intents.guilds = True  # the server: its owner and roles
        intents.guild_messages = True
        intents.voice_states = self.view.voice_channel is not None
        intents.message_content = privileged
        intents.members = privileged and self._settings.members_intent
        return intents

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        settings = self._settings
        Route.BASE = settings.api_url.rstrip("/")
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
        if settings.record:
            self._recorder = Recorder(Path(settings.record))
            self._recorder.open()
        self._feed = OrderedFeed(PLATFORM)
        self._inbox.reopen()
        self._pump = asyncio.create_task(self._pump_events(), name="discord-events")
        try:
            try:
                await self._connect(self._intents(privileged=True))
            except discord.PrivilegedIntentsRequired:
                members = " and 'Server Members Intent'" if settings.members_intent else ""
                self._detail = MESSAGE_CONTENT_OFF.format(members=members)
                log.error("%s", self._detail)
                self.message_content = False
                await self._close_client()
                await self._connect(self._intents(privileged=False))
            await self._sync_commands()
        except BaseException:
            await self.stop()
            raise
        self._connected = True

    async def _connect(self, intents: discord.Intents) -> None:
        client = self._client = _Client(
            self, intents, self._guild_ready_timeout, self._heartbeat_timeout
        )
        token = self._settings.token.get_secret_value() if self._settings.token else ""
        try:
            await client.login(token)
        except discord.LoginFailure:
            raise PlatformAuthError(
                "discord: Discord refused the bot token (platforms.discord.token); copy it "
                "again from the Bot page of the developer portal"
            ) from None
        except (discord.HTTPException, OSError) as exc:
            raise PlatformError(f"discord: cannot reach Discord: {exc}") from None
        self._runner = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {self._runner, ready}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            failed = self._runner.exception() if self._runner in done else None
            if isinstance(failed, discord.PrivilegedIntentsRequired):
                raise failed
            if failed is not None:
                raise PlatformError(f"discord: the gateway closed: {failed}") from None
            raise PlatformError("discord: the gateway did not get ready within a minute")
        self._runner.add_done_callback(self._gateway_ended)
        invite = (
            "invite it with the OAuth2 URL generator of the developer portal (scopes bot and "
            "applications.commands)"
        )
        if self._settings.guild_id is None and len(client.guilds) != 1:
            raise PlatformError(
                f"discord: the bot is a member of {len(client.guilds)} servers; "
                + ("set platforms.discord.guild_id to one" if client.guilds else invite)
            )
        guild_id = int(self.view.guild_id or 0)
        if client.get_guild(guild_id) is None:
            raise PlatformError(
                f"discord: the bot is not a member of the server {guild_id} "
                f"(platforms.discord.guild_id); {invite}"
            )
        self.view.bot_user_id = str(client.user.id) if client.user else ""
        self.application_id = str(client.application_id or "")

    async def _sync_commands(self) -> None:
        if self._catalog is None or self._client is None:
            return
        payload, included = slash_payload(self._catalog.specs())
        self.view.commands = {spec.name: spec for spec in included}
        guild = self.view.guild_id
        digest = commands_digest(self.application_id, guild, payload)
        account = SLASH_HASH_ACCOUNT.format(guild=guild)
        stored: Token | None = None
        try:
            self._vault = self._vault or self._open_vault()
            stored = await self._vault.get(PLATFORM, account)
        except VaultError as exc:
            log.warning("discord: %s; the slash commands are registered again", exc)
        if stored is not None and stored.access_token == digest:
            return
        try:
            await self._client.http.bulk_upsert_guild_commands(
                int(self.application_id), int(guild), payload
            )
        except discord.HTTPException as exc:
            self._detail = f"the slash commands could not be registered: {exc}"
            log.warning("discord: %s", self._detail)
            return
        self.synced = True
        log.info("discord: registered %d slash commands", len(payload))
        if self._vault is not None:
            with contextlib.suppress(VaultError):
                await self._vault.store(Token(PLATFORM, account, digest))

    async def _close_client(self) -> None:
        runner, self._runner = self._runner, None  # (so its end is not taken for a failure)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner

    async def stop(self) -> None:
        self._connected = False
        # No new dispatch is taken; those received are handled (their answers still have the
        # client) within the grace, then cut (``platforms/stopping.py``).
        try:
            await stop_events(
                PLATFORM,
                feed=self._feed,
                reader=self._pump,
                inbox=self._inbox,
                grace=self._grace,
                lost="a restart identifies anew: Discord does not send them again",
            )
        finally:
            self._pump = self._feed = None
            await self._close_client()
            if self._vault is not None:
                await self._vault.close()
                self._vault = None
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None

    # ------------------------------------------------------------------ connection state
    def _gateway_up(self) -> None:
        self._connected = True
        self._retrying_since = None

    def _gateway_down(self) -> None:
        if self._connected or self._retrying_since is None:
            self._retrying_since = self._clock.now()
        self._connected = False

    def _gateway_ended(self, runner: asyncio.Task[None]) -> None:
        """discord.py gave up reconnecting (a close it cannot recover from, such as a token
        revoked while running): say so once; the other platforms run on."""
        if runner.cancelled() or runner is not self._runner:
            return
        failed = runner.exception()
        self._connected = False
        self._detail = f"the gateway stopped: {failed or 'closed'}"
        log.error("discord: %s", self._detail)

    def status(self) -> PlatformStatus:
        return PlatformStatus(
            self._connected,
            retrying_since=self._retrying_since,
            last_event_at=self._last_event_at,
            detail="; ".join(part for part in (self._detail, self._inbox.detail()) if part),
        )

    # ------------------------------------------------------------------ incoming
    def _received(self, kind: str, sequence: int | None, data: Any) -> None:
        """A dispatch, straight from discord.py's receive loop (in order; the loop waits for
        room in the inbox after this frame, see ``_pace``)."""
        if self._recorder is not None:
            self._recorder.write(kind, sequence, data)
        self._inbox.put((kind, data))

    async def _pump_events(self) -> None:
        while True:
            try:
                kind, data = await self._inbox.get()
            except InboxClosed:  # stopping, and everything received was handed over
                return
            try:
                await self._handle(kind, data)
            except FrameError as exc:
                log.warning("discord: skipped a dispatch that does not parse: %s", exc)
            except Exception:
                log.exception("discord: could not handle %s", kind)

    async def _handle(self, kind: str, data: Any) -> None:
        parsed = parse_dispatch(kind, data, self.view, self._clock.now())
        if parsed is None:
            return
        self._last_event_at = self._clock.now()
        assert self._feed is not None
        match parsed:
            case CompletionRequest():  # (no database: nothing to keep in order with)
                request = parsed
                await self._feed.submit(
                    ("completion", request.interaction_id),
                    lambda: self._complete(request),
                    f"autocomplete of /{request.command}",
                )
            case SlashCall():  # in order with the viewer's chat lines
                call = parsed
                await self._feed.submit(
                    call.message.viewer.key, lambda: self._slash(call), f"slash {call.message.id}"
                )
            case _:
                event = parsed
                await self._feed.submit(
                    event_key(event), lambda: self.feed(event), f"{event.kind} {event.id}"
                )

    async def feed(self, event: Event) -> None:
        assert self._sink is not None
        await self._sink(event)

    async def _slash(self, call: SlashCall) -> None:
        channel = call.message.channel
        if not self.view.listens_in(channel):
            where = f" in <#{self.default_channel}>" if self.default_channel else " elsewhere"
            await self._callback(
                call.interaction_id,
                call.token,
                CHANNEL_MESSAGE,
                {
                    "content": f"I answer{where}.",
                    "flags": EPHEMERAL,
                    "allowed_mentions": {"parse": []},
                },
            )
            return
        try:
            await self._callback(call.interaction_id, call.token, DEFERRED_CHANNEL_MESSAGE, None)
        except discord.HTTPException as exc:  # e.g. 10062 Unknown interaction: over 3 s late
            name = call.message.text.removeprefix(self.view.prefix)
            log.warning("discord: could not take /%s (%s); it was not run", name, exc)
            return
        pending = self._pending[call.message.id] = _Pending(call)
        mark = _answering.set(pending)
        try:
            await self.feed(call.message)
        finally:
            _answering.reset(mark)
            self._pending.pop(call.message.id, None)
            if not pending.answered:  # nothing was said (a repeat): take "thinking..." away
                with contextlib.suppress(discord.HTTPException):
                    await self._webhook("DELETE", call.token, "/messages/@original", None)

    async def _complete(self, request: CompletionRequest) -> None:
        spec = self.view.commands.get(request.command)
        param = next((p for p in spec.params if p.name == request.option), None) if spec else None
        found = (
            self._catalog.choices(param.kind, request.typed)
            if param is not None and self._catalog is not None
            else []
        )
        choices = [{"name": value, "value": value} for value in found[:25]]
        await self._callback(
            request.interaction_id, request.token, AUTOCOMPLETE_RESULT, {"choices": choices}
        )

    # ------------------------------------------------------------------ REST
    async def _callback(
        self, interaction_id: str, token: str, kind: int, data: dict[str, Any] | None
    ) -> None:
        client = self._require_client()
        route = Route(
            "POST",
            "/interactions/{interaction_id}/{webhook_token}/callback",
            interaction_id=interaction_id,
            webhook_token=token,
        )
        body: dict[str, Any] = {"type": kind}
        if data is not None:
            body["data"] = data
        await client.http.request(route, json=body)

    async def _webhook(
        self, method: str, token: str, tail: str, body: dict[str, Any] | None
    ) -> None:
        client = self._require_client()
        route = Route(
            method,
            "/webhooks/{webhook_id}/{webhook_token}" + tail,
            webhook_id=self.application_id,
            webhook_token=token,
        )
        if body is None:
            await client.http.request(route)
        else:
            await client.http.request(route, json=body)

    def _require_client(self) -> _Client:
        if self._client is None:
            raise PlatformError("discord: not connected")
        return self._client

    # ------------------------------------------------------------------ outgoing
    async def send(self, channel: str, text: str) -> None:
        pending = _answering.get()  # (a timer task made meanwhile inherits it: check it runs)
        if (
            pending is not None
            and pending.call.message.channel == channel
            and self._pending.get(pending.call.message.id) is pending
        ):
            await self._answer(pending, text)
            return
        client = self._require_client()
        channel = channel or self.default_channel
        if not channel.isdigit():
            raise PlatformError(
                "discord: no channel to say this in; list one in platforms.discord.channels"
            )
        target = client.get_partial_messageable(int(channel))
        await target.send(text, allowed_mentions=discord.AllowedMentions.none())

    async def reply(self, to: ChatMessage, text: str) -> None:
        pending = self._pending.get(to.id)
        if pending is not None:
            await self._answer(pending, text)
            return
        client = self._require_client()
        target = client.get_partial_messageable(int(to.channel))
        reference = discord.MessageReference(
            message_id=int(to.id), channel_id=int(to.channel), fail_if_not_exists=False
        )
        await target.send(
            text, reference=reference, allowed_mentions=_only(to.viewer.platform_user_id)
        )

    async def _answer(self, pending: _Pending, text: str) -> None:
        """A line for an interaction: the first replaces "thinking...", later ones follow."""
        author = pending.call.message.viewer.platform_user_id
        body = {"content": text, "allowed_mentions": {"parse": [], "users": [author]}}
        if pending.answered:
            await self._webhook("POST", pending.call.token, "", body)
        else:
            pending.answered = True
            await self._webhook("PATCH", pending.call.token, "/messages/@original", body)

    @property
    def inbox(self) -> Inbox[tuple[str, Any]]:
        """What the library has received and the adapter not yet taken (``platforms/inbox.py``)."""
        return self._inbox

    @property
    def client(self) -> discord.Client | None:
        return self._client


def _only(user_id: str) -> discord.AllowedMentions:
    """Mentions that may ping: the one viewer answered, nobody else."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(id=int(user_id))], replied_user=True
    )
