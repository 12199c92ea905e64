"""``bot.py replay twitch|discord|joystick FILE.jsonl``: recorded platform traffic through the
same bot,
scripted.

Like ``bot.py console --script``: a simulated clock (starting at the scripted instant, then
following the frames' timestamps), the wheel's fixed seed, no audio, and the queues finished
after every frame, so each outcome prints right after the frame that caused it. The database
is the configured one (``DATABASE_URL`` works), so a streamer's problem can be replayed against
a copy of their database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pixelbot.app.assembly import open_app
from pixelbot.app.console_run import SCRIPT_START, console_bus
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.platforms.base import Platform
from pixelbot.platforms.discord import view_from_settings
from pixelbot.platforms.discord_replay import ReplayStream as DiscordReplay
from pixelbot.platforms.joystick_replay import JoystickReplay
from pixelbot.platforms.twitch_replay import ReplayStream

__all__ = ["run_replay"]


async def run_replay(
    config: Config,
    config_path: Path | None,
    lines: Iterable[str],
    *,
    platform: str = "twitch",
    out: Callable[[str], None] = print,
    base_dir: Path | None = None,
) -> int:
    """Play ``lines`` (the platform's raw frames, one a line); returns how many were skipped."""
    clock = FakeClock(SCRIPT_START)
    stream: ReplayStream | DiscordReplay | JoystickReplay
    if platform == "discord":
        view = view_from_settings(config.platforms.discord, config.bot.prefix)
        stream = DiscordReplay(clock, out, bot_name=config.bot.name, view=view)
    elif platform == "joystick":
        joystick = config.platforms.joystick
        stream = JoystickReplay(
            clock,
            out,
            bot_name=config.bot.name,
            bot_username=joystick.bot_username or "",
            channel_id=joystick.channel_id or "",
        )
    else:
        twitch = config.platforms.twitch
        stream = ReplayStream(
            clock,
            out,
            bot_name=config.bot.name,
            channel=(twitch.channel or "").lower(),
            bot_id=twitch.bot_id or "",
            redeems=config.redeems,
        )
    platforms: list[Platform] = [stream]
    async with open_app(
        config,
        clock=clock,
        config_path=config_path,
        platforms=platforms,
        bus=console_bus(out),
        scripted=True,
        base_dir=base_dir,
    ) as app:
        stream.drain = app.queue.drain
        await stream.play(lines)
        await app.queue.drain()
    return stream.skipped
