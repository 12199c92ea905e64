"""Running the bot: build the engine and the bot, attach the platforms, feed them events.

Today the console stream is the platform; Twitch, Discord and Joystick adapters attach here the
same way when they are enabled.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from pixelbot.app import Engine
from pixelbot.clock import Clock, FakeClock, SystemClock, utc
from pixelbot.config import Config
from pixelbot.errors import ConfigError, ConfigIssue
from pixelbot.platforms.console import ConsoleStream
from pixelbot.runtime import Bot

__all__ = ["SCRIPT_START", "run_console"]

# Scripted runs start here, so transcripts are the same on every machine and every day.
SCRIPT_START = utc(2026, 1, 1, 20, 0, 0)


async def run_console(
    config: Config,
    config_path: Path | None,
    *,
    script: Iterable[str] | None = None,
    out: Callable[[str], None] = print,
    stdin: TextIO | None = None,
) -> None:
    """Run the console stream: the lines of ``script`` (simulated clock), or the keyboard."""
    if not config.platforms.console_enabled:
        raise ConfigError(
            [ConfigIssue("platforms.console.enabled", "is off and no other platform can run yet")]
        )
    clock: Clock = FakeClock(SCRIPT_START) if script is not None else SystemClock()
    async with Engine.open(config, clock) as engine:
        bot = Bot(engine, config_path)
        console = ConsoleStream(bot, clock, out)
        bot.platforms.append(console)
        for name, error in (await bot.load_cogs()).items():
            out(f"[console] cog {name} {error}")
        out(f"{config.bot.name}: {console.greeting()}")
        if script is not None:
            await console.run_lines(script)
            return
        gc.collect()
        gc.freeze()  # start-up objects live for the whole run: keep them out of GC scans
        source = stdin or sys.stdin
        while not console.stopped:
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            await console.handle_line(line)
        out(f"{config.bot.name}: Bye!")
