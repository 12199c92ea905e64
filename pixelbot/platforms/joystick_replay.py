"""Replay recorded Joystick.tv gateway traffic (``bot.py replay joystick FILE.jsonl``).

A recording (``bot.py run --record FILE``) holds the raw ActionCable frames the adapter read,
one JSON object a line, credentials redacted, pings left out. ``JoystickReplay`` is a platform
named "joystick" that feeds each frame through the live adapter's parsing
(``joystick_events.event_from_frame``) into the bot; what the bot says prints as
``<bot name>: ...`` lines (a whisper as ``<bot name> (whisper to NAME): ...``). The clock is
simulated and follows the frames' ``createdAt`` (never backwards). A line that cannot be
parsed is reported with its number and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pixelbot.clock import FakeClock
from pixelbot.events import ChatMessage
from pixelbot.platforms.joystick_events import (
    PLATFORM,
    FrameError,
    event_from_frame,
    frame_time,
    parse_frame,
)
from pixelbot.platforms.recording import ReplayPlatform

__all__ = ["JoystickReplay"]


class JoystickReplay(ReplayPlatform):
    """A stand-in for the Joystick adapter that plays a recorded file into the bot."""

    name = PLATFORM

    def __init__(
        self,
        clock: FakeClock,
        out: Callable[[str], None],
        *,
        bot_name: str,
        bot_username: str = "",
        channel_id: str = "",
    ) -> None:
        super().__init__(clock, out, bot_name=bot_name, default_channel=channel_id)
        self._own_name = bot_username.lower()
        self._only_channel = channel_id

    async def whisper(self, username: str, text: str, channel: str = "") -> None:
        self.out(f"{self.bot_name} (whisper to {username}): {text}")

    async def play(self, lines: Iterable[str]) -> None:
        """Feed every frame, in order; the queues finish after each one."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                frame = parse_frame(line)
                self.follow_clock(frame_time(frame))
                event = event_from_frame(frame, self._clock.now())
            except FrameError as exc:
                self.skip(number, exc)
                continue
            if event is None:
                continue
            channel = str(frame["message"].get("channelId") or "")
            if self._only_channel and channel and channel != self._only_channel:
                continue
            if channel:
                self.default_channel = channel
            if isinstance(event, ChatMessage) and event.viewer.platform_user_id == self._own_name:
                continue
            await self.feed(event)
