"""Record and replay raw Twitch traffic.

Recording (``bot.py run --record FILE.jsonl``): every raw EventSub WebSocket message the bot
receives is appended to FILE, one JSON object a line, exactly as Twitch sent it, except that
any value under a key naming a token or secret is replaced by ``"[redacted]"`` (EventSub
messages carry none today; the rule keeps it so if that changes). twitchio decodes each frame
with its module-level ``_from_json``; the recorder wraps that one function, which is the only
place every frame passes through.

Replay (``bot.py replay twitch FILE.jsonl``): ``ReplayStream`` is a platform named "twitch"
that reads such a file and feeds each notification through the live adapter's parsing
(``twitch_events.event_from_frame``) into the bot; what the bot says prints as
``<bot name>: ...`` lines, like the console. The clock is simulated and follows the frames'
``message_timestamp`` (never backwards), so cooldowns behave as they did live. A line that
cannot be parsed is reported with its number and skipped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from twitchio.eventsub import websockets as eventsub_websockets

from pixelbot.clock import FakeClock
from pixelbot.config.redeems import RedeemSettings
from pixelbot.events import ChatMessage, RewardRedemption
from pixelbot.platforms.base import Capabilities, EventSink, PlatformStatus
from pixelbot.platforms.twitch_events import PLATFORM, FrameError, event_from_frame, frame_time

__all__ = ["Recorder", "ReplayStream", "redact"]

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


class Recorder:
    """Appends every raw EventSub frame twitchio decodes to a JSONL file (while installed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._original: Callable[[Any], Any] | None = None

    def install(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        original: Callable[[Any], Any] = getattr(eventsub_websockets, "_from_json")  # noqa: B009
        self._original = original

        def recording(data: Any) -> Any:
            decoded = original(data)
            if self._file is not None and isinstance(decoded, dict):
                self._file.write(json.dumps(redact(decoded), separators=(",", ":")) + "\n")
                self._file.flush()
            return decoded

        setattr(eventsub_websockets, "_from_json", recording)  # noqa: B010

    def uninstall(self) -> None:
        if self._original is not None:
            setattr(eventsub_websockets, "_from_json", self._original)  # noqa: B010
            self._original = None
        if self._file is not None:
            self._file.close()
            self._file = None


class ReplayStream:
    """A stand-in for the Twitch adapter that plays a recorded file into the bot."""

    name = PLATFORM

    def __init__(
        self,
        clock: FakeClock,
        out: Callable[[str], None],
        *,
        bot_name: str,
        channel: str,
        bot_id: str = "",
        redeems: Mapping[str, RedeemSettings] | None = None,
    ) -> None:
        self.bot_id = bot_id  # the bot's own chat lines come back over EventSub: not fed
        # Reward ids differ between channels and runs: a replay finds the redeem by title.
        self._reward_titles = {
            (redeem.twitch_reward.title or redeem.title): key
            for key, redeem in (redeems or {}).items()
            if redeem.twitch_reward is not None
        }
        self._clock = clock
        self.out = out
        self.bot_name = bot_name
        self.default_channel = channel
        self.capabilities = Capabilities(native_rewards=True, messages_per_window=10_000)
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

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None:
        status = "FULFILLED" if fulfilled else "CANCELED"
        self.out(f"[twitch] {redeem} redemption {redemption_id}: {status}")

    async def play(self, lines: Iterable[str]) -> None:
        """Feed every notification, in order; the queues finish after each one."""
        assert self._sink is not None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
                if not isinstance(frame, dict):
                    raise FrameError("not a JSON object")
                self._follow_clock(frame_time(frame))
                event = event_from_frame(frame, self._clock.now())
            except (ValueError, FrameError) as exc:
                self.skipped += 1
                self.out(f"[replay] line {number} skipped: {exc}")
                continue
            if event is None:
                continue
            if isinstance(event, ChatMessage) and event.viewer.platform_user_id == self.bot_id:
                continue
            if isinstance(event, RewardRedemption):
                title = frame["payload"]["event"]["reward"].get("title", "")
                key = self._reward_titles.get(title)
                if key is None:
                    self.out(f"[replay] line {number}: no redeem has the reward {title!r}")
                    continue
                event = dataclasses.replace(event, reward=key)
            await self._sink(event)
            if self.drain is not None:
                await self.drain()

    def _follow_clock(self, at: datetime | None) -> None:
        if at is not None and at > self._clock.now():
            self._clock.advance(at - self._clock.now())
