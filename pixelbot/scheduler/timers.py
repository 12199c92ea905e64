"""Timers (``timers:`` in config.yaml): lines the bot says in chat on an interval.

The ``timers`` job runs once a minute (on the simulated clock too, under ``/tick``) and asks
the ``TimerBoard`` what is due. A timer speaks on a platform when, there:

- its ``every`` has passed since it last spoke (or since the bot started), and
- at least ``min_chat_lines`` chat lines were seen since it last spoke (a quiet chat is not
  filled with the same line), and
- the stream is live, unless the timer says ``offline: true``.

A timer whose time has come but whose chat is too quiet speaks as soon as enough lines have
come in (at the next check). What a timer said and when lives in memory: after a restart the
intervals start over, which can only delay a line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pixelbot.config.timers import TimerSettings

__all__ = ["DueLine", "TimerBoard"]


@dataclass(frozen=True)
class DueLine:
    platform: str
    text: str


@dataclass
class _Slot:
    """One timer on one platform: when it may speak next, and the platform's chat-line count
    when it last spoke."""

    next_at: datetime
    lines_then: int


class TimerBoard:
    def __init__(self, started_at: datetime | None = None) -> None:
        """``started_at``: when the bot started (the first intervals count from there);
        None: from the first check."""
        self._started_at = started_at
        self._slots: dict[tuple[int, str, str], _Slot] = {}

    def due(
        self,
        timers: Sequence[TimerSettings],
        now: datetime,
        *,
        live: bool,
        platforms: Sequence[str],
        lines_on: Callable[[str], int],
    ) -> list[DueLine]:
        """The lines to say now, and remember them as said."""
        if self._started_at is None:
            self._started_at = now
        lines: list[DueLine] = []
        for index, timer in enumerate(timers):
            if not timer.enabled:
                continue
            for platform in platforms:
                # (keyed by the text too: a reload that changes a timer starts it over)
                key = (index, timer.message, platform)
                slot = self._slots.get(key)
                if slot is None:
                    slot = self._slots[key] = _Slot(self._started_at + timer.every, 0)
                if now < slot.next_at or not (live or timer.offline):
                    continue
                seen = lines_on(platform)
                if seen - slot.lines_then < timer.min_chat_lines:
                    continue  # too quiet: ask again at the next check
                slot.next_at, slot.lines_then = now + timer.every, seen
                lines.append(DueLine(platform, timer.message))
        return lines
