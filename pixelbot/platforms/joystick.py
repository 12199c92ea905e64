"""The Joystick.tv adapter: Rails ActionCable over one WebSocket (aiohttp's client).

Connecting: ``GET <gateway_url>?token=<basic key>`` with the subprotocol
``actioncable-v1-json``, then ``subscribe`` to ``GatewayChannel``. ``start`` returns once
Joystick confirms the subscription; a rejection (wrong client id or secret, the bot
uninstalled) is a ``PlatformAuthError`` that says what to check.

Reading: one task reads the socket and hands each event to an ``OrderedFeed``
(``platforms/feed.py``): one viewer's events are handled in the order Joystick sent them (a
chat line before its deletion), different viewers' at once, so the writer commits a busy chat
in groups; a stream going live or offline waits for everything before it. Joystick pings
about every 3 s; a socket silent for ``silence_timeout`` is taken as dead. A frame that does
not parse is logged and skipped, never the end of the connection.

Dropping: a closed, failed or silent socket is reconnected with backoff
(``platforms/backoff.py``); while that goes on ``status()`` says since when. Joystick may
deliver an event again after a reconnect; every event keeps the id it had the first time
(``joystick_events``), so nothing is paid twice.

Stopping: the reader stops at once if it is waiting for a frame, or right after the event it is
handing to the feed; the events read are handled within the grace (answered over the socket,
which closes last), the rest cut and counted (``platforms/stopping.py``).

Sending: chat goes out over the same socket as the ``send_message`` action (``send_whisper``
for a private line to one viewer); both name the channel (``channelId``) they go to.

Several channels: one bot application hears every channel that installed it. With
``channel_id`` set, frames of other channels are ignored; otherwise the bot answers in the
channel each event came from, and announcements go to the channel heard from last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from pixelbot.clock import Clock
from pixelbot.config.model import JoystickPlatform as JoystickSettings
from pixelbot.errors import PlatformAuthError, PlatformError
from pixelbot.events import ChatMessage, Event
from pixelbot.platforms.backoff import Backoff
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.feed import OrderedFeed, event_key
from pixelbot.platforms.joystick_auth import basic_key
from pixelbot.platforms.joystick_events import (
    GATEWAY_IDENTIFIER,
    PLATFORM,
    FrameError,
    control_of,
    event_from_frame,
    parse_frame,
)
from pixelbot.platforms.recording import FrameLog
from pixelbot.platforms.stopping import GRACE, stop_events

__all__ = ["SUBPROTOCOL", "JoystickAdapter"]

log = logging.getLogger(__name__)

SUBPROTOCOL = "actioncable-v1-json"
HANDSHAKE_TIMEOUT = 15.0  # seconds to connect and have the subscription confirmed
REJECTED = (
    "joystick: the gateway rejected the GatewayChannel subscription; check "
    "platforms.joystick.client_id and client_secret (the bot application's OAuth "
    "credentials) and that the bot is still installed (`python bot.py auth joystick`)"
)

Sleep = Callable[[float], Awaitable[None]]


class _Dropped(Exception):
    """The socket ended (closed, failed, silent or told to go): reconnect."""


class JoystickAdapter:
    """The Platform for Joystick.tv (one bot application; usually one channel)."""

    name = PLATFORM

    def __init__(
        self,
        settings: JoystickSettings,
        clock: Clock,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        grace: float = GRACE,
    ) -> None:
        """``grace``: seconds the events read get to finish when the adapter stops."""
        self._grace = grace
        self._settings = settings
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        client_id = settings.client_id.get_secret_value() if settings.client_id else ""
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        self._key = basic_key(client_id, secret)
        self._only_channel = settings.channel_id or ""
        self._own_name = (settings.bot_username or "").lower()
        self.default_channel = self._only_channel
        # Joystick publishes no chat limits; the original bot kept a second between its lines.
        self.capabilities = Capabilities(
            max_message_length=500,
            long_messages="split",
            mention_style="at_name",
            messages_per_window=10,
            rate_window=timedelta(seconds=10),
        )
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sink: EventSink | None = None
        self._feed: OrderedFeed | None = None
        self._record: FrameLog | None = None
        self._stopping = False
        self._handing_over = False  # the reader is handing an event to the feed
        self._connected = False
        self._retrying_since: datetime | None = None
        self._last_event_at: datetime | None = None
        self._detail = ""
        self.connections = 0  # sockets opened and confirmed (a reconnect adds one)
        self.skipped = 0  # frames that did not parse

    # ------------------------------------------------------------------ life cycle
    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._feed = OrderedFeed(PLATFORM)
        self._stopping = False
        if self._settings.record:
            self._record = FrameLog(Path(self._settings.record))
            self._record.open()
        self._session = aiohttp.ClientSession()
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._run(), name="joystick-gateway")

    async def stop(self) -> None:
        """Read no more frames; the events read are handled within the grace (their answers
        go out over the socket, still open), then cut (``platforms/stopping.py``)."""
        self._stopping = True
        self._connected = False
        reader = self._reader
        if reader is not None and not self._handing_over:
            reader.cancel()  # (waiting for a frame or a reconnect: nothing in hand)
        try:
            await stop_events(PLATFORM, feed=self._feed, reader=reader, grace=self._grace)
        finally:
            self._reader = self._feed = None
            await self._close_socket()
            if self._session is not None:
                with contextlib.suppress(Exception):
                    await self._session.close()
                self._session = None
            if self._record is not None:
                self._record.close()
                self._record = None

    async def _close_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _connect(self) -> None:
        """Open the socket and subscribe; returns once Joystick confirms."""
        assert self._session is not None
        url = f"{self._settings.gateway_url}?token={self._key}"
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                ws = await self._session.ws_connect(
                    url, protocols=(SUBPROTOCOL,), autoping=True, heartbeat=None
                )
                self._ws = ws
                await self._send_frame({"command": "subscribe", "identifier": GATEWAY_IDENTIFIER})
                await self._await_confirmation(ws)
        except aiohttp.WSServerHandshakeError as exc:
            await self._close_socket()
            if exc.status in (401, 403):
                raise PlatformAuthError(REJECTED) from None
            raise PlatformError(
                f"joystick: the gateway refused the connection (HTTP {exc.status})"
            ) from None
        except TimeoutError:
            await self._close_socket()
            raise PlatformError(
                "joystick: the gateway did not confirm the subscription in time"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            await self._close_socket()
            raise PlatformError(
                f"joystick: cannot reach the gateway ({type(exc).__name__}: {exc})".replace(
                    self._key, "[key]"
                )
            ) from None
        except PlatformError:
            await self._close_socket()
            raise
        self._connected = True
        self._retrying_since = None
        self._detail = ""
        self.connections += 1

    async def _await_confirmation(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                raise PlatformError("joystick: the gateway closed the socket before confirming")
            if message.type is aiohttp.WSMsgType.ERROR:
                raise PlatformError(f"joystick: the socket failed: {ws.exception()}")
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            self._keep(message.data)
            try:
                frame = parse_frame(message.data)
            except FrameError as exc:
                self._skip(exc)
                continue
            control = control_of(frame)
            if control is None:
                await self._feed_frame(frame)  # an event before the confirmation: keep it
                continue
            if control.kind == "confirm_subscription":
                return
            if control.kind == "reject_subscription":
                raise PlatformAuthError(REJECTED)
            if control.kind == "disconnect":
                reason = control.reason or "no reason given"
                if reason == "unauthorized":
                    raise PlatformAuthError(REJECTED)
                raise PlatformError(f"joystick: the gateway disconnected the bot ({reason})")

    # ------------------------------------------------------------------ reading
    async def _run(self) -> None:
        """Read until stopped; reconnect (with backoff) whenever the socket ends."""
        while not self._stopping:
            try:
                await self._read()
                reason = "the socket ended"
            except _Dropped as exc:
                reason = str(exc)
            except Exception as exc:  # a bug here must not end the connection for good
                log.exception("joystick: reading the gateway failed")
                reason = f"reading failed ({type(exc).__name__})"
            if self._stopping:  # (the socket stays open for the answers still to come)
                return
            # Down, since when and why, in one step, before the socket is closed: closing one
            # that went silent waits for the gateway's answer (aiohttp: up to 10 s), and
            # ``status`` must not show the platform down with no "since" and no reason.
            self._connected = False
            self._retrying_since = self._clock.now()
            self._detail = reason
            await self._close_socket()
            if self._stopping:
                return
            log.warning("joystick: %s; reconnecting", reason)
            attempt = 0
            while not self._stopping:
                await self._sleep(self._backoff.delay(attempt))
                attempt += 1
                try:
                    await self._connect()
                except Exception as exc:  # whatever it was, the next attempt may work
                    self._detail = str(exc) or type(exc).__name__
                    log.debug("joystick: reconnect attempt %d failed: %s", attempt, exc)
                    continue
                log.warning("joystick: reconnected after %d attempt(s)", attempt)
                break

    async def _read(self) -> None:
        ws = self._ws
        if ws is None:
            raise _Dropped("not connected")
        silence = self._settings.silence_timeout.total_seconds()
        while not self._stopping:
            try:
                message = await ws.receive(timeout=silence)
            except TimeoutError:
                raise _Dropped(f"the gateway was silent for {silence:g} s") from None
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                raise _Dropped("the gateway closed the socket")
            if message.type is aiohttp.WSMsgType.ERROR:
                raise _Dropped(f"the socket failed: {ws.exception()}")
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            self._keep(message.data)
            try:
                frame = parse_frame(message.data)
            except FrameError as exc:
                self._skip(exc)
                continue
            control = control_of(frame)
            if control is None:
                await self._feed_frame(frame)
            elif control.kind == "disconnect":
                raise _Dropped(f"the gateway asked the bot to go ({control.reason or 'no reason'})")
            elif control.kind == "reject_subscription":
                self._detail = REJECTED
                raise _Dropped(REJECTED)

    async def _feed_frame(self, frame: dict[str, Any]) -> None:
        try:
            event = event_from_frame(frame, self._clock.now())
        except FrameError as exc:
            self._skip(exc)
            return
        if event is None:
            return
        channel = str(frame["message"].get("channelId") or "")
        if self._only_channel and channel and channel != self._only_channel:
            return  # another streamer's channel (a public bot hears every install)
        if channel:
            self.default_channel = channel
        if (
            isinstance(event, ChatMessage)
            and self._own_name
            and event.viewer.platform_user_id == self._own_name
        ):
            return  # the bot's own lines come back: they earn nothing and run no commands
        self._last_event_at = self._clock.now()
        assert self._feed is not None
        self._handing_over = True  # (a stop lets this finish instead of cancelling it)
        try:
            await self._feed.submit(
                event_key(event), lambda: self.feed(event), f"{event.kind} {event.id}"
            )
        finally:
            self._handing_over = False

    async def feed(self, event: Event) -> None:
        """Push one event into the bot; a failure there is logged, the socket reads on."""
        assert self._sink is not None
        try:
            await self._sink(event)
        except Exception:
            log.exception("joystick: the bot could not handle %s %s", event.kind, event.id)

    def _skip(self, exc: Exception) -> None:
        self.skipped += 1
        log.warning("joystick: skipped a frame that does not parse: %s", exc)

    def _keep(self, raw: str) -> None:
        """Append a raw frame to the recording (pings left out: they say nothing)."""
        if self._record is None:
            return
        try:
            frame = json.loads(raw)
        except ValueError:
            self._record.write({"unparsed": raw})
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            return
        self._record.write(frame)

    # ------------------------------------------------------------------ outgoing
    async def _send_frame(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise PlatformError("joystick: not connected")
        try:
            await ws.send_str(json.dumps(frame, separators=(",", ":")))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise PlatformError(f"joystick: sending failed ({type(exc).__name__})") from None

    async def _action(self, data: dict[str, str]) -> None:
        await self._send_frame(
            {
                "command": "message",
                "identifier": GATEWAY_IDENTIFIER,
                "data": json.dumps(data, separators=(",", ":")),
            }
        )

    def _channel(self, channel: str) -> str:
        found = channel or self.default_channel
        if not found:
            raise PlatformError(
                "joystick: no channel to speak in yet (none heard from; set "
                "platforms.joystick.channel_id)"
            )
        return found

    async def send(self, channel: str, text: str) -> None:
        await self._action(
            {"action": "send_message", "text": text, "channelId": self._channel(channel)}
        )

    async def reply(self, to: ChatMessage, text: str) -> None:
        await self.send(to.channel, text)

    async def whisper(self, username: str, text: str, channel: str = "") -> None:
        """A private line to one viewer (Joystick's ``send_whisper``)."""
        await self._action(
            {
                "action": "send_whisper",
                "username": username,
                "text": text,
                "channelId": self._channel(channel),
            }
        )

    # ------------------------------------------------------------------ status
    def status(self) -> PlatformStatus:
        return PlatformStatus(
            self._connected,
            retrying_since=self._retrying_since,
            last_event_at=self._last_event_at,
            detail=self._detail,
        )
