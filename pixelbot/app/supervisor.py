"""Several platforms in one process: none may take the others down, and the operator hears
about a platform that is down without being flooded.

- A platform that fails to start is tried again with backoff (``platforms/backoff.py``) until
  it connects or the bot stops; when it does, it joins ``app.platforms`` as if it had started
  with the others. (A platform that *drops* after starting reconnects itself: twitchio does so
  for Twitch, ``platforms/joystick.py`` for Joystick; its ``status()`` says since when.)
- Once a minute, every platform that is not connected is reported: one log line and one
  ``Notice("platform", ...)`` on the bus each, naming since when and why.
- Every few minutes a status line shows each platform: connected (and its last event) or down
  since when. ``status_line`` renders the same thing for anyone who asks (the dashboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pixelbot.outcomes import Notice
from pixelbot.platforms.backoff import Backoff
from pixelbot.platforms.base import Platform, PlatformStatus

if TYPE_CHECKING:
    from pixelbot.app.assembly import App

__all__ = ["PlatformSupervisor", "Supervision", "status_line"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Supervision:
    """How patiently platforms are retried, and how often the operator hears about them."""

    backoff: Backoff = field(default_factory=Backoff)
    report_every: float = 60.0  # seconds between "still down" reports of one platform
    status_every: float = 300.0  # seconds between status lines


def _when(at: datetime | None) -> str:
    return "?" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def status_line(found: dict[str, PlatformStatus]) -> str:
    """``twitch connected (last event ...); joystick retrying since ... (why)``."""
    parts: list[str] = []
    for name, status in sorted(found.items()):
        if status.connected:
            last = (
                "no event yet"
                if status.last_event_at is None
                else (f"last event {_when(status.last_event_at)}")
            )
            parts.append(f"{name} connected ({last})")
        else:
            why = f" ({status.detail})" if status.detail else ""
            parts.append(f"{name} retrying since {_when(status.retrying_since)}{why}")
    return "; ".join(parts) or "no platforms"


class PlatformSupervisor:
    def __init__(
        self,
        app: App,
        start: Callable[[Platform], Awaitable[None]],
        settings: Supervision,
    ) -> None:
        self._app = app
        self._start = start  # the assembly's way of starting one platform (raises on failure)
        self._settings = settings
        self._retrying: dict[str, asyncio.Task[None]] = {}
        self._since: dict[str, datetime] = {}  # platform -> down since (as the bot saw it)
        self._loops: list[asyncio.Task[None]] = []
        self.recovered: list[Platform] = []  # started by a retry: stopped by ``stop``

    def down_since(self, name: str) -> datetime | None:
        return self._since.get(name)

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._report_down(), name="platforms-report"),
            asyncio.create_task(self._report_status(), name="platforms-status"),
        ]

    def retry(self, platform: Platform) -> None:
        """Keep trying to start ``platform`` (which just failed) until it connects."""
        if platform.name in self._retrying:
            return
        self._since.setdefault(platform.name, self._app.engine.clock.now())
        self._retrying[platform.name] = asyncio.create_task(
            self._keep_trying(platform), name=f"retry-{platform.name}"
        )

    async def _keep_trying(self, platform: Platform) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(self._settings.backoff.delay(attempt))
            attempt += 1
            try:
                await self._start(platform)
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                self._app.platform_errors[platform.name] = reason
                log.debug("%s: start attempt %d failed: %s", platform.name, attempt + 1, reason)
                continue
            break
        self._retrying.pop(platform.name, None)
        self._since.pop(platform.name, None)
        self._app.platform_errors.pop(platform.name, None)
        self.recovered.append(platform)
        line = f"{platform.name} is connected (after {attempt + 1} attempts)"
        log.warning("%s", line)
        await self._app.bus.publish(Notice("platform", line))

    async def _report_down(self) -> None:
        while True:
            await asyncio.sleep(self._settings.report_every)
            for name, status in self._app.status().items():
                if status.connected:
                    continue
                since = _when(status.retrying_since)
                line = f"{name} is down since {since}: {status.detail or 'reconnecting'}"
                log.warning("%s", line)
                await self._app.bus.publish(Notice("platform", line))

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(self._settings.status_every)
            # The local console is always there: a line about it alone would only interrupt
            # whoever is typing into it.
            found = {name: s for name, s in self._app.status().items() if name != "console"}
            if not found:
                continue
            line = status_line(found)
            log.warning("platforms: %s", line)
            await self._app.bus.publish(Notice("platform", line))

    async def stop(self) -> list[Platform]:
        """Stop retrying and reporting; returns the platforms a retry started (to stop)."""
        tasks = [*self._loops, *self._retrying.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops, self._retrying = [], {}
        return self.recovered
