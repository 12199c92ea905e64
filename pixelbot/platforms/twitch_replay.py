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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from twitchio.eventsub import websockets as eventsub_websockets

from pixelbot.clock import FakeClock
from pixelbot.config.redeems import RedeemSettings
from pixelbot.events import ChatMessage, RewardRedemption
from pixelbot.platforms.base import Capabilities
from pixelbot.platforms.recording import FrameLog, ReplayPlatform
from pixelbot.platforms.twitch_events import PLATFORM, FrameError, event_from_frame, frame_time

__all__ = ["Recorder", "ReplayStream"]


class Recorder:
    """Appends every raw EventSub frame twitchio decodes to a JSONL file (while installed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log = FrameLog(path)
        self._original: Callable[[Any], Any] | None = None

    def install(self) -> None:
        self._log.open()
        original: Callable[[Any], Any] = getattr(eventsub_websockets, "_from_json")  # noqa: B009
        self._original = original

        def recording(data: Any) -> Any:
            decoded = original(data)
            if isinstance(decoded, dict):
                self._log.write(decoded)
            return decoded

        setattr(eventsub_websockets, "_from_json", recording)  # noqa: B010

    def uninstall(self) -> None:
        if self._original is not None:
            setattr(eventsub_websockets, "_from_json", self._original)  # noqa: B010
            self._original = None
        self._log.close()


class ReplayStream(ReplayPlatform):
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
        super().__init__(
            clock,
            out,
            bot_name=bot_name,
            default_channel=channel,
            capabilities=Capabilities(native_rewards=True, messages_per_window=10_000),
        )
        self.bot_id = bot_id  # the bot's own chat lines come back over EventSub: not fed
        # Reward ids differ between channels and runs: a replay finds the redeem by title.
        self._reward_titles = {
            (redeem.twitch_reward.title or redeem.title): key
            for key, redeem in (redeems or {}).items()
            if redeem.twitch_reward is not None
        }

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None:
        status = "FULFILLED" if fulfilled else "CANCELED"
        self.out(f"[twitch] {redeem} redemption {redemption_id}: {status}")

    async def play(self, lines: Iterable[str]) -> None:
        """Feed every notification, in order; the queues finish after each one."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
                if not isinstance(frame, dict):
                    raise FrameError("not a JSON object")
                self.follow_clock(frame_time(frame))
                event = event_from_frame(frame, self._clock.now())
            except (ValueError, FrameError) as exc:
                self.skip(number, exc)
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
            await self.feed(event)
