"""Running the bot: build the engine and the bot, attach the platforms, feed them events.

Today the console stream is the platform; Twitch, Discord and Joystick adapters attach here the
same way when they are enabled.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

from pixelbot.app import Engine
from pixelbot.clock import Clock, FakeClock, SystemClock, utc
from pixelbot.config import Config
from pixelbot.economy.obs_undos import ObsUndoStore
from pixelbot.errors import ConfigError, ConfigIssue
from pixelbot.gc_tuning import tune_after_start
from pixelbot.platforms.console import ConsoleStream
from pixelbot.queue.workers.registry import build_workers
from pixelbot.runtime import Bot

__all__ = ["SCRIPT_START", "open_console", "run_console"]

# Scripted runs start here, so transcripts are the same on every machine and every day.
SCRIPT_START = utc(2026, 1, 1, 20, 0, 0)
SCRIPT_SEED = 2026  # the wheel's RNG in scripted runs


async def run_console(
    config: Config,
    config_path: Path | None,
    *,
    script: Iterable[str] | None = None,
    out: Callable[[str], None] = print,
    stdin: TextIO | None = None,
    base_dir: Path | None = None,
) -> None:
    """Run the console stream: the lines of ``script`` (simulated clock), or the keyboard."""
    scripted = script is not None
    async with open_console(
        config, config_path, scripted=scripted, out=out, base_dir=base_dir
    ) as console:
        out(f"{config.bot.name}: {console.greeting()}")
        if script is not None:
            await console.run_lines(script)
            await console.drain()
            return
        tune_after_start()
        source = stdin or sys.stdin
        while not console.stopped:
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            await console.handle_line(line)
    out(f"{config.bot.name}: Bye!")  # after the queue stopped: its last words come first


@asynccontextmanager
async def open_console(
    config: Config,
    config_path: Path | None,
    *,
    scripted: bool,
    out: Callable[[str], None] = print,
    base_dir: Path | None = None,
) -> AsyncIterator[ConsoleStream]:
    """The engine, the bot, its cogs, the queue workers and the console stream, wired and
    started; stopped again on exit. ``base_dir``: where relative paths (data/tts) resolve
    (default: the working directory, like the database URL)."""
    if not config.platforms.console_enabled:
        raise ConfigError(
            [ConfigIssue("platforms.console.enabled", "is off and no other platform can run yet")]
        )
    clock: Clock = FakeClock(SCRIPT_START) if scripted else SystemClock()
    async with Engine.open(config, clock) as engine:
        bot = Bot(engine, config_path)
        console = ConsoleStream(bot, clock, out, drain_each_line=scripted)
        bot.platforms.append(console)
        for name, error in (await bot.load_cogs()).items():
            out(f"[console] cog {name} {error}")
        workers = build_workers(
            lambda: bot.config,
            base_dir=base_dir or Path.cwd(),
            # Scripted runs are the same every time: a fixed seed, no audio, and waits that
            # move the simulated clock instead of the real one (also in real time when OBS is
            # enabled: OBS must see a source shown for 2s, so its lines stay deterministic,
            # not its timing).
            rng=random.Random(SCRIPT_SEED) if scripted else random.Random(),
            sleep=_clock_sleep(clock, real=config.obs.enabled)
            if isinstance(clock, FakeClock)
            else asyncio.sleep,
            play_audio=not scripted,
            undos=ObsUndoStore(engine.db, clock),
        )
        try:
            recovered = await bot.start_queue(workers, only_while_draining=scripted)
            for item_id in recovered.retried:  # (refunded ones print like any failure)
                out(f"[queue] #{item_id} was running when the bot stopped: queued again")
            yield console
        finally:
            await bot.stop_queue()


def _clock_sleep(clock: FakeClock, *, real: bool) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(max(0.0, seconds))
        await asyncio.sleep(max(0.0, seconds) if real else 0)

    return sleep
