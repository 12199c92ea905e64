"""Chat delivery: the bus's ``Say`` outcomes, said on the platform they belong to.

Here, and only here, a line meets its platform's limits: the mention is written the way the
platform writes one (``@alice``, ``<@1234>``), a line longer than a message is split or cut as
the platform declares, and replies keep to the configured reply rate per channel and to the
platform's own outgoing rate.

Nothing is dropped for the rate: lines beyond it wait (in order) and go out merged into as few
messages as fit, as soon as the channel has room again: at the next line said there, or when
the window frees (a timer, on the real clock). A redeem's confirmation or a refund notice is
never lost to a busy chat. Only a backlog past ``MAX_WAITING`` lines in one channel gives up
its oldest lines, with a warning in the log. A platform that fails to send is logged; the bot
goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pixelbot.clock import Clock
from pixelbot.config import Config
from pixelbot.domain.rate_limit import ReplyLimiter
from pixelbot.events import ChatMessage
from pixelbot.outcomes import Say
from pixelbot.platforms.base import Platform, mention, split_message

__all__ = ["MAX_WAITING", "ChatDelivery", "merge_lines"]

log = logging.getLogger(__name__)

MAX_WAITING = 200  # lines waiting in one channel before the oldest are given up
SEPARATOR = " · "


def merge_lines(lines: list[str]) -> str:
    """Lines that waited, as one text: repeats said once, in the order first said."""
    return SEPARATOR.join(dict.fromkeys(lines))


class ChatDelivery:
    def __init__(
        self, clock: Clock, settings: Callable[[], Config], *, flush_timers: bool = True
    ) -> None:
        """``flush_timers``: send waiting lines when the window frees on the real clock (off
        for a simulated clock, where time only moves when the script says)."""
        self._clock = clock
        self._settings = settings
        self._flush_timers = flush_timers
        rate = settings().commands.reply_rate
        self.limiter = ReplyLimiter(clock, rate.messages, rate.per)  # the streamer's choice
        self._platform_limits: dict[str, ReplyLimiter] = {}  # each platform's own limit
        self.platforms: dict[str, Platform] = {}
        # (platform, channel) -> lines waiting, each with the message it answers (if any)
        self._held: dict[tuple[str, str], list[tuple[str, ChatMessage | None]]] = {}
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Lines said while the bot starts (a crash recovery refunding an item) wait here for
        # their platform to connect; ``started()`` ends that.
        self._waiting: list[Say] | None = []

    def attach(self, platform: Platform) -> None:
        self.platforms[platform.name] = platform
        caps = platform.capabilities
        self._platform_limits[platform.name] = ReplyLimiter(
            self._clock, caps.messages_per_window, caps.rate_window
        )

    async def started(self) -> None:
        """Every platform that could start has: say what waited for them."""
        waiting, self._waiting = self._waiting or [], None
        for say in waiting:
            await self.deliver(say)

    def detach(self, platform: Platform) -> None:
        self.platforms.pop(platform.name, None)
        self._platform_limits.pop(platform.name, None)

    def apply_config(self, config: Config) -> None:
        rate = config.commands.reply_rate
        self.limiter.messages, self.limiter.per = rate.messages, rate.per

    def waiting(self, platform: str, channel: str) -> list[str]:
        """The lines waiting for room in a channel."""
        return [text for text, _ in self._held.get((platform, channel), [])]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for (platform, channel), lines in self._held.items():
            if lines:
                log.warning(
                    "%d line(s) for %s:%s were still waiting for the reply rate at shutdown",
                    len(lines),
                    platform,
                    channel,
                )
        self._held.clear()

    async def deliver(self, say: Say) -> None:
        platform = self.platforms.get(say.platform)
        if self._waiting is not None and (platform is None or not self.platforms):
            self._waiting.append(say)
            return
        if platform is None:  # e.g. an item asked for on a platform that is not running now
            if say.platform or not self.platforms:
                log.info("nowhere to say (no %s platform): %s", say.platform or "chat", say.text)
                return
            platform = next(iter(self.platforms.values()))
        channel = say.channel or platform.default_channel
        text = say.text
        if say.mention is not None:
            text = f"{mention(say.mention, platform.capabilities.mention_style)} {text}"
        held = self._held.setdefault((platform.name, channel), [])
        held.append((text, say.reply_to))
        if len(held) > MAX_WAITING:
            log.warning(
                "too many lines waiting in %s:%s; gave up the oldest", platform.name, channel
            )
            del held[: len(held) - MAX_WAITING]
        await self._flush(platform, channel)

    # -- sending ------------------------------------------------------------------------------

    def _room(self, platform: Platform, channel: str) -> int:
        limits = self._platform_limits[platform.name]
        caps = platform.capabilities  # may change once connected (Twitch: the bot is a moderator)
        limits.messages, limits.per = caps.messages_per_window, caps.rate_window
        own = limits.room(channel)
        return min(self.limiter.room(f"{platform.name}:{channel}"), own)

    async def _flush(self, platform: Platform, channel: str) -> None:
        """Send what waits in a channel, as far as the rate allows; the rest keeps waiting."""
        key = (platform.name, channel)
        held = self._held.get(key)
        if not held:
            return
        room = self._room(platform, channel)
        if room <= 0:
            self._schedule(platform, channel)
            return
        # One line alone goes out as it is (split if long, threaded where the platform threads
        # replies); several are merged into as few messages as fit.
        caps = platform.capabilities
        answering = held[0][1] if len(held) == 1 and caps.threads_replies else None
        text = held[0][0] if len(held) == 1 else merge_lines([line for line, _ in held])
        parts = split_message(text, caps)
        sending, rest = parts[:room], parts[room:]
        self._held[key] = [(part, None) for part in rest]
        # The room is taken before the first send is awaited: a flush running meanwhile (one
        # platform answers several viewers at once) sees it gone and cannot overshoot the rate.
        for _ in sending:
            self.limiter.allow(f"{platform.name}:{channel}")
            self._platform_limits[platform.name].allow(channel)
        for part in sending:
            try:
                if answering is not None:
                    await platform.reply(answering, part)
                else:
                    await platform.send(channel, part)
            except Exception as exc:  # one line; the traceback only with -v
                log.warning(
                    "could not send a reply on %s: %s",
                    platform.name,
                    f"{type(exc).__name__}: {exc}",
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
        if rest:
            self._schedule(platform, channel)

    def _schedule(self, platform: Platform, channel: str) -> None:
        key = (platform.name, channel)
        if not self._flush_timers or key in self._timers:
            return
        delay = max(
            self.limiter.retry_after(f"{platform.name}:{channel}"),
            self._platform_limits[platform.name].retry_after(channel),
        )

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
            finally:
                self._timers.pop(key, None)
            with contextlib.suppress(KeyError):  # detached meanwhile
                await self._flush(self.platforms[platform.name], channel)

        self._timers[key] = asyncio.create_task(later(), name=f"flush-{platform.name}-{channel}")
