"""The dashboard's live feed: what happens (an item queued, skipped, refunded, an alert, an
operator's change) pushed to every open dashboard page over its WebSocket.

It subscribes to the outcome bus, which also carries chat, so it never waits for a browser:
each page has its own bounded backlog and a task that sends it; a page that falls
``LIVE_BACKLOG`` updates behind is dropped (it reconnects and reloads), one whose session
ended is closed. Viewer names travel as plain values; the page shows them as text.

How many pages may be open at once is capped (``connections``, ``web.dashboard.max_connections``;
``pixelbot/web/connections.py``): each one costs a socket, a task and a copy of every update.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from pixelbot.clock import Clock
from pixelbot.outcomes import (
    Alert,
    ItemQueued,
    ItemSettled,
    ItemStarted,
    Notice,
    Outcome,
    StreamChanged,
    WheelSpun,
)
from pixelbot.web.auth import DashboardAuth, Session
from pixelbot.web.connections import ConnectionCap

__all__ = [
    "LINK_NOTICE",
    "LIVE_BACKLOG",
    "LIVE_OUTCOMES",
    "SESSION_ENDED",
    "TOO_SLOW",
    "LiveFeed",
    "LivePage",
    "live_event",
]

log = logging.getLogger(__name__)

LIVE_OUTCOMES = (ItemQueued, ItemStarted, ItemSettled, WheelSpun, Alert, Notice, StreamChanged)
# The notice that carries a one-time login link: printed for the operator, never shown on a
# dashboard page (a page shared on stream would show everyone a way in).
LINK_NOTICE = "dashboard-login"
LIVE_BACKLOG = 200  # updates queued for one page before it is given up on
SESSION_ENDED = (4401, b"session ended")
TOO_SLOW = (4408, b"too far behind")


@dataclass
class LivePage:
    """One open dashboard page's live socket and the updates waiting to be sent to it."""

    socket: web.WebSocketResponse
    session: Session
    backlog: asyncio.Queue[str | tuple[int, bytes]] = field(
        default_factory=lambda: asyncio.Queue(LIVE_BACKLOG + 1)
    )

    def offer(self, message: str) -> bool:
        if self.backlog.qsize() >= LIVE_BACKLOG:
            return False
        self.backlog.put_nowait(message)
        return True

    def end(self, why: tuple[int, bytes]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.backlog.put_nowait(why)

    async def pump(self) -> None:
        """Send what is queued, in order, until told to close."""
        while True:
            message = await self.backlog.get()
            if isinstance(message, tuple):
                await self.socket.close(code=message[0], message=message[1])
                return
            try:
                await self.socket.send_str(message)
            except (ConnectionError, RuntimeError):
                return


@dataclass
class LiveFeed:
    """The open dashboard pages, fed from the outcome bus (``outcome`` is the subscriber)."""

    auth: DashboardAuth
    clock: Clock
    pages: list[LivePage] = field(default_factory=list)
    connections: ConnectionCap = field(
        default_factory=lambda: ConnectionCap(
            warning="{open} dashboard pages open (web.dashboard.max_connections): refusing "
            "more until one closes; close the dashboard tabs nobody uses, or raise the setting",
            reason="too many dashboard pages open: {limit} (web.dashboard.max_connections)",
        )
    )

    async def outcome(self, outcome: Outcome) -> None:
        """A bus subscriber: queue a line for every open dashboard page. It never waits for
        a page (the bus runs chat too): a page whose backlog is full is dropped, and the
        page reconnects and reloads; a page whose session ended is closed."""
        if not self.pages or (isinstance(outcome, Notice) and outcome.kind == LINK_NOTICE):
            return
        message = json.dumps({"type": "event", "event": live_event(outcome, self.clock.now())})
        for page in list(self.pages):
            if self.auth.session_for(self.auth.cookie_for(page.session)) is None:
                self._drop(page, SESSION_ENDED)
            elif not page.offer(message):
                log.info("a dashboard page fell %d updates behind: dropped", LIVE_BACKLOG)
                self._drop(page, TOO_SLOW)

    def _drop(self, page: LivePage, why: tuple[int, bytes]) -> None:
        """Stop feeding a page; its socket is closed once what was queued has gone out."""
        if page in self.pages:
            self.pages.remove(page)
        page.end(why)

    async def close_sockets(self) -> None:
        for page in list(self.pages):
            await page.socket.close(code=1001, message=b"the bot is stopping")
        self.pages.clear()


def live_event(outcome: Outcome, now: datetime) -> dict[str, Any]:
    """What a live outcome looks like on the events page (viewer names as plain values)."""
    viewer: str | None = None
    kind = type(outcome).__name__
    if isinstance(outcome, ItemQueued):
        viewer, kind = outcome.viewer_name, "queued"
        text = f"redeemed {outcome.title} (#{outcome.item_id})"
    elif isinstance(outcome, ItemStarted):
        viewer, kind = outcome.viewer_name, "started"
        text = f"#{outcome.item_id} {outcome.title} is playing"
    elif isinstance(outcome, ItemSettled):
        viewer, kind = outcome.viewer_name, outcome.status
        text = outcome.summary
    elif isinstance(outcome, WheelSpun):
        viewer, kind = outcome.viewer_name, "wheel"
        text = f"won {outcome.prize} on the {outcome.wheel} wheel"
    elif isinstance(outcome, Alert):
        viewer, kind = outcome.viewer_name, outcome.kind
        text = outcome.text
    elif isinstance(outcome, Notice):
        kind, text = outcome.kind, outcome.text
    elif isinstance(outcome, StreamChanged):
        kind = "stream"
        text = f"{outcome.platform} {outcome.channel} is {'live' if outcome.live else 'offline'}"
    else:
        text = ""
    return {"kind": kind, "viewer": viewer, "text": text, "at": now.isoformat(), "live": True}
