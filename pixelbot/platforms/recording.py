"""What recording and replaying a platform's raw traffic share, whatever the platform.

Recording (``bot.py run --record FILE.jsonl``) appends each raw inbound frame to a JSONL file
(``FrameLog``) with every value under a key that names a credential replaced (``redact``).
Replay (``bot.py replay PLATFORM FILE.jsonl``) runs a stand-in platform (a ``ReplayPlatform``
subclass per platform) that feeds each recorded frame through the live adapter's own parser
into the bot, on a simulated clock that follows the frames' times, and prints what the bot
says like the console does. Each platform's module says how its frames are read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pixelbot.clock import FakeClock
from pixelbot.events import ChatMessage, Event
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus

__all__ = ["FrameLog", "ReplayPlatform", "redact"]

_SECRET_WORDS = ("token", "secret", "password", "authorization")


def redact(value: Any) -> Any:
    """``value`` with everything under a key that names a credential replaced."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class FrameLog:
    """A JSONL file raw frames are appended to, redacted, one a line (while open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, frame: Any) -> None:
        if self._file is not None:
            self._file.write(json.dumps(redact(frame), separators=(",", ":")) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ReplayPlatform:
    """A stand-in platform that plays a recording into the bot: what the bot says is printed
    as ``<bot name>: ...``; ``drain`` (set by the replay) finishes the queues after each
    event, so a transcript is the same on every run."""

    name: str

    def __init__(
        self,
        clock: FakeClock,
        out: Callable[[str], None],
        *,
        bot_name: str,
        default_channel: str = "",
        capabilities: Capabilities | None = None,
    ) -> None:
        self._clock = clock
        self.out = out
        self.bot_name = bot_name
        self.default_channel = default_channel
        self.capabilities = capabilities or Capabilities(messages_per_window=10_000)
        self._sink: EventSink | None = None
        self.drain: Callable[[], Awaitable[None]] | None = None
        self.skipped = 0

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        return None

    async def send(self, channel: str, text: str) -> None:
        self.out(f"{self.bot_name}: {text}")

    async def reply(self, to: ChatMessage, text: str) -> None:
        await self.send(to.channel, text)

    def status(self) -> PlatformStatus:
        return PlatformStatus(self._sink is not None)

    def skip(self, number: int, why: object) -> None:
        """A line that cannot be parsed: reported with its number, and the replay goes on."""
        self.skipped += 1
        self.out(f"[replay] line {number} skipped: {why}")

    def follow_clock(self, at: datetime | None) -> None:
        """Move the simulated clock to a frame's time (never backwards)."""
        if at is not None and at > self._clock.now():
            self._clock.advance(at - self._clock.now())

    async def feed(self, event: Event) -> None:
        assert self._sink is not None, "start() first"
        await self._sink(event)
        if self.drain is not None:
            await self.drain()
