"""The overlay hub: what the overlay pages show, kept here, pushed to them over one WebSocket.

The hub listens on the outcome bus (a spin's record, TTS audio, alerts, queue changes) and keeps
the current state of each overlay: the spin under way, the audio playing, the alert on screen,
what is playing and waiting. A page that connects (first time, late, or again after a lost
connection) gets that state at once, then every change. Messages are JSON objects with a
``type``; pages send back ``ended`` (or ``error``) for the item they showed.

It is also the queue's ``Stage`` (``pixelbot/queue/stage.py``): a worker's ``show`` publishes
the outcome and waits for a page's report, so a spin is told only once the wheel has landed.
Alerts are paced here, one at a time, each for its ``duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web

from pixelbot.commands.services import Services
from pixelbot.config import Config
from pixelbot.economy.payloads import payload_of
from pixelbot.errors import OverlayUnavailable
from pixelbot.outcomes import (
    Alert,
    ItemQueued,
    ItemSettled,
    ItemStarted,
    Outcome,
    OutcomeBus,
    TtsPlaying,
    WheelSpinning,
)
from pixelbot.web.connections import ConnectionCap

__all__ = ["MAX_WAITING_ALERTS", "NOW_LIMIT", "OverlayHub"]

log = logging.getLogger(__name__)

MAX_WAITING_ALERTS = 100  # past this (a follow-bot raid), new alerts are dropped, not queued
NOW_LIMIT = 5  # waiting items shown per queue on the "now" overlay
SEND_TIMEOUT = 2.0  # seconds a page may take to take a message before it is disconnected

Message = dict[str, Any]


class _Showing:
    """The item an overlay shows now (a spin, TTS audio) and since when a page shows it."""

    def __init__(self, item_id: int, message: Message) -> None:
        self.item_id = item_id
        self.message = message
        self.since: float | None = None  # monotonic; set when a page first gets it

    def for_page(self) -> Message:
        if self.since is None:
            self.since = time.monotonic()
        elapsed = int((time.monotonic() - self.since) * 1000)
        return {**self.message, "elapsed_ms": elapsed}


class OverlayHub:
    def __init__(self, bus: OutcomeBus, settings: Callable[[], Config], services: Services) -> None:
        self._bus = bus
        self._settings = settings
        self._services = services
        self._pages: dict[str, set[web.WebSocketResponse]] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self._waiting: dict[tuple[str, int], asyncio.Future[Message]] = {}
        self._showing: dict[str, _Showing] = {}  # "wheel" / "tts" -> the item shown
        self._alerts: deque[Message] = deque()
        self._alert_ready = asyncio.Event()
        self._alert: tuple[Message, float] | None = None  # on screen, until (monotonic)
        self._alert_task: asyncio.Task[None] | None = None
        self._now_dirty = asyncio.Event()
        self._now_task: asyncio.Task[None] | None = None
        self._next_alert_id = 1
        self._closing: set[asyncio.Task[bool]] = set()
        # Every page carries the one overlay key, so this is the cap per key.
        self.connections = ConnectionCap(
            warning="{open} overlay pages open with the overlay key "
            "(web.overlays.max_connections): refusing more until one closes; if that is not "
            "you, the key has leaked (bot.py web new-key)",
            reason="too many overlay pages open: {limit} with this key "
            "(web.overlays.max_connections)",
        )
        bus.subscribe(self._on_outcome)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._alert_task = asyncio.create_task(self._pace_alerts(), name="overlay-alerts")
        self._now_task = asyncio.create_task(self._refresh_now(), name="overlay-now")

    async def stop(self) -> None:
        self._bus.unsubscribe(self._on_outcome)
        for task in (self._alert_task, self._now_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for pages in self._pages.values():
            for socket in list(pages):
                await socket.close(code=WSCloseCode.GOING_AWAY, message=b"the bot stops")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(OverlayUnavailable("the bot is stopping", "overlay"))

    # -- pages --------------------------------------------------------------------------------

    def watching(self, overlay: str) -> bool:
        return bool(self._pages.get(overlay))

    def pages(self, overlay: str) -> int:
        return len(self._pages.get(overlay, ()))

    def open_overlays(self) -> list[str]:
        """The overlays with a page open now (``wheel (2)`` for two pages)."""
        found = []
        for name, pages in sorted(self._pages.items()):
            if pages:
                found.append(name if len(pages) == 1 else f"{name} ({len(pages)})")
        return found

    async def attach(self, overlay: str, socket: web.WebSocketResponse) -> None:
        """A page connected: give it the current state, then keep it posted."""
        self._pages.setdefault(overlay, set()).add(socket)
        self._arrived.setdefault(overlay, asyncio.Event()).set()
        await self._send(socket, await self._state(overlay))

    def detach(self, overlay: str, socket: web.WebSocketResponse) -> None:
        self._pages.get(overlay, set()).discard(socket)

    async def disconnect_all(self, overlay: str | None = None) -> None:
        """Close the pages' connections (they reconnect by themselves)."""
        for name, pages in self._pages.items():
            if overlay is None or name == overlay:
                for socket in list(pages):
                    await socket.close(code=WSCloseCode.GOING_AWAY, message=b"reconnect")

    def report(self, overlay: str, message: Message) -> None:
        """A page reports on an item it showed: ``ended`` (with what it saw) or ``error``."""
        item_id = message.get("item_id")
        if not isinstance(item_id, int):
            return
        future = self._waiting.get((overlay, item_id))
        if future is None or future.done():
            return  # (another page of the same overlay told first, or nobody waits)
        if message.get("type") == "error":
            # Not a refund: anyone holding the overlay key can send this, and a report that
            # failed a shown item would let a viewer who learned the URL refund (reroll) their
            # own spin or cut and refund anyone's TTS. The item counts as shown; the page's
            # complaint is kept on it and logged for the streamer. (Refunds come only from
            # what the bot itself knows: no page open, or no end reported in time.)
            why = str(message.get("message", "unknown error"))[:200]
            log.warning("the %s overlay reported a problem showing #%s: %s", overlay, item_id, why)
            future.set_result({**_plain(message), "page_error": why})
        else:
            future.set_result(_plain(message))

    async def _state(self, overlay: str) -> Message:
        state: Message = {"type": "state", "overlay": overlay}
        showing = self._showing.get(overlay)
        if showing is not None:
            state["current"] = showing.for_page()
        if overlay == "alerts" and self._alert is not None:
            alert, until = self._alert
            state["current"] = {**alert, "remaining_ms": int((until - time.monotonic()) * 1000)}
        if overlay == "now":
            state["now"] = await self._now()
        return state

    async def _broadcast(self, overlay: str, message: Message) -> None:
        for socket in list(self._pages.get(overlay, ())):
            await self._send(socket, message)

    async def _send(self, socket: web.WebSocketResponse, message: Message) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await socket.send_json(message)
        except (ConnectionError, RuntimeError):  # closing: its handler detaches it
            log.debug("an overlay page went away while being sent %s", message.get("type"))
        except TimeoutError:  # a page that stopped reading must not hold the bot up
            log.warning("an overlay page stopped reading; it is disconnected (it will reconnect)")
            for pages in self._pages.values():
                pages.discard(socket)
            closing = asyncio.create_task(socket.close(code=WSCloseCode.GOING_AWAY))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    # -- the queue's stage --------------------------------------------------------------------

    async def show(
        self,
        overlay: str,
        item_id: int,
        outcome: Outcome,
        *,
        page_timeout: float,
        end_within: float,
    ) -> Message:
        key = (overlay, item_id)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        ended = False
        try:
            await self._bus.publish(outcome)  # (the hub hears it too, and shows it)
            if not self.watching(overlay):
                arrived = self._arrived.setdefault(overlay, asyncio.Event())
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), page_timeout)
                except TimeoutError:
                    raise OverlayUnavailable(
                        f"the {overlay} overlay is not open (waited {page_timeout:g}s)", overlay
                    ) from None
            try:
                report = await asyncio.wait_for(asyncio.shield(future), end_within)
            except TimeoutError:
                raise OverlayUnavailable(
                    f"the {overlay} overlay did not finish it within {end_within:g}s", overlay
                ) from None
            ended = True
            return report
        finally:
            self._waiting.pop(key, None)
            showing = self._showing.get(overlay)
            if showing is not None and showing.item_id == item_id:
                del self._showing[overlay]
                if not ended:  # skipped, timed out, or the bot stops: the pages stop it
                    await self._broadcast(overlay, {"type": "stop", "item_id": item_id})

    # -- outcomes -----------------------------------------------------------------------------

    async def _on_outcome(self, outcome: Outcome) -> None:
        match outcome:
            case WheelSpinning():
                await self._start_showing("wheel", outcome.item_id, _spin_message(outcome))
            case TtsPlaying():
                message = {
                    "type": "tts",
                    "item_id": outcome.item_id,
                    "viewer": outcome.viewer_name,
                    "text": outcome.text,
                    "seconds": outcome.seconds,
                    "audio": f"tts/audio/{outcome.item_id}",  # (relative to /overlay/)
                }
                await self._start_showing("tts", outcome.item_id, message)
            case Alert():
                self._queue_alert(outcome)
            case ItemSettled():
                await self._broadcast(
                    "wheel" if outcome.kind == "wheel" else outcome.kind,
                    {
                        "type": "settled",
                        "item_id": outcome.item_id,
                        "status": outcome.status,
                        "summary": outcome.summary,
                    },
                )
                self._now_dirty.set()
            case ItemQueued() | ItemStarted():
                self._now_dirty.set()

    async def _start_showing(self, overlay: str, item_id: int, message: Message) -> None:
        showing = _Showing(item_id, message)
        self._showing[overlay] = showing
        if self.watching(overlay):
            await self._broadcast(overlay, showing.for_page())

    # -- alerts -------------------------------------------------------------------------------

    def _queue_alert(self, alert: Alert) -> None:
        settings = self._settings().web.overlays.alerts
        template = settings.template(alert.kind)
        if template is None:
            return
        if len(self._alerts) >= MAX_WAITING_ALERTS:
            log.warning(
                "alerts overlay: %d alerts waiting, dropping a %s", len(self._alerts), alert.kind
            )
            return
        values = _Blank(user=alert.viewer_name, points=f"{alert.points:,}", **alert.details)
        duration = template.duration or settings.duration
        self._alerts.append(
            {
                "type": "alert",
                "id": self._next_alert_id,
                "kind": alert.kind,
                "user": alert.viewer_name,
                "text": template.text.format_map(values),
                "sound": f"sounds/{template.sound}" if template.sound else None,
                "duration_ms": int(duration.total_seconds() * 1000),
            }
        )
        self._next_alert_id += 1
        self._alert_ready.set()

    async def _pace_alerts(self) -> None:
        while True:
            await self._alert_ready.wait()
            if not self._alerts:
                self._alert_ready.clear()
                continue
            alert = self._alerts.popleft()
            seconds = alert["duration_ms"] / 1000
            self._alert = (alert, time.monotonic() + seconds)
            await self._broadcast("alerts", {**alert, "remaining_ms": alert["duration_ms"]})
            await asyncio.sleep(seconds)
            self._alert = None
            await self._broadcast("alerts", {"type": "alert_end", "id": alert["id"]})

    # -- what is playing and waiting ----------------------------------------------------------

    async def _refresh_now(self) -> None:
        while True:
            await self._now_dirty.wait()
            self._now_dirty.clear()
            if self.watching("now"):
                try:
                    now = await self._now()
                except Exception:  # the database is busy or down: the next change retries
                    log.warning("the now overlay could not be refreshed", exc_info=True)
                    continue
                await self._broadcast("now", {"type": "now", "now": now})

    async def _now(self) -> Message:
        queue = self._services.queue
        playing = []
        for item in queue.running():
            payload = payload_of(item.kind, item.payload)
            playing.append(_entry(item.kind, item.id, payload.title, payload.viewer_name))
        waiting: dict[str, list[Message]] = {kind: [] for kind in queue.kinds}
        counts: dict[str, int] = dict.fromkeys(queue.kinds, 0)
        for pending in await self._services.queue_items.pending():
            counts[pending.kind] = counts.get(pending.kind, 0) + 1
            shown = waiting.setdefault(pending.kind, [])
            if len(shown) < NOW_LIMIT:
                payload = payload_of(pending.kind, pending.payload)
                shown.append(_entry(pending.kind, pending.id, payload.title, payload.viewer_name))
        return {
            "playing": playing,
            "waiting": waiting,
            "counts": counts,
            "paused": sorted(queue.paused),
        }


def _entry(kind: str, item_id: int, title: str, viewer: str) -> Message:
    return {"kind": kind, "item_id": item_id, "title": title, "viewer": viewer}


def _spin_message(spin: WheelSpinning) -> Message:
    return {
        "type": "spin",
        "item_id": spin.item_id,
        "wheel": spin.wheel,
        "prizes": [{"name": name, "weight": weight} for name, weight in spin.prizes],
        "prize_index": spin.prize_index,
        "roll": spin.roll,
        "viewer": spin.viewer_name,
        "spin_ms": int(spin.spin_seconds * 1000),
    }


def _plain(message: Message) -> Message:
    """What a page reported, kept only as small plain values (it is recorded on the item)."""
    kept: Message = {}
    for key, value in list(message.items())[:10]:
        if key != "type" and isinstance(value, int | float | str | bool):
            kept[str(key)[:40]] = value[:200] if isinstance(value, str) else value
    return kept


class _Blank(dict[str, str]):
    """Template values; a figure this event does not have reads as nothing."""

    def __missing__(self, key: str) -> str:
        return ""
