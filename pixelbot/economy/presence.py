"""Who is watching right now, per platform: the viewers the platforms said joined (console
``/join``, Joystick ``UserPresence``, a Discord voice channel, Twitch's chatter list) and
have not left, with when each last chatted. Watch-time payouts read it; timers read how many
chat lines each platform has seen (``lines_on``).

It lives in memory: after a restart the platforms announce who is there again (a viewer who
stays silent and is not re-announced is missed for a tick or two, never paid twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pixelbot.events import Viewer

__all__ = ["PresenceTracker", "Watcher"]


@dataclass
class Watcher:
    viewer: Viewer  # as last seen (its roles decide the multiplier)
    joined_at: datetime
    last_chat_at: datetime | None = None


class PresenceTracker:
    def __init__(self) -> None:
        self._present: dict[tuple[str, str], Watcher] = {}
        self._last_chat: dict[tuple[str, str], datetime] = {}
        self._lines: dict[str, int] = {}  # platform -> chat lines seen since the bot started

    def joined(self, viewer: Viewer, at: datetime) -> None:
        watcher = self._present.get(viewer.key)
        if watcher is None:
            self._present[viewer.key] = Watcher(viewer, at, self._last_chat.get(viewer.key))
        else:
            watcher.viewer = viewer

    def seen(self, viewer: Viewer) -> None:
        """The viewer did something: keep their latest roles (a sub mid-stream counts)."""
        watcher = self._present.get(viewer.key)
        if watcher is not None:
            watcher.viewer = viewer

    def left(self, viewer: Viewer) -> None:
        self._present.pop(viewer.key, None)

    def chatted(self, viewer: Viewer, at: datetime) -> None:
        self._last_chat[viewer.key] = at
        self._lines[viewer.platform] = self._lines.get(viewer.platform, 0) + 1
        watcher = self._present.get(viewer.key)
        if watcher is not None:
            watcher.last_chat_at = at
            watcher.viewer = viewer

    def watching(self, now: datetime, active_within: timedelta | None = None) -> list[Watcher]:
        """Everyone present (who chatted within ``active_within``, when it is given)."""
        found = list(self._present.values())
        if active_within is not None:
            since = now - active_within
            found = [w for w in found if w.last_chat_at is not None and w.last_chat_at >= since]
        return found

    def lines_on(self, platform: str) -> int:
        """How many chat lines ``platform`` has seen since the bot started."""
        return self._lines.get(platform, 0)

    def __len__(self) -> int:
        return len(self._present)
