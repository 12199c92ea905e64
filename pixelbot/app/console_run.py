"""Running the bot from the command line: ``bot.py run`` (every enabled platform) and
``bot.py console`` (the console stream alone, live or scripted).

Both go through ``open_app``. With the console among the platforms, the keyboard (or a
script) feeds it; otherwise the bot runs until it is interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from pixelbot.app.assembly import App, open_app
from pixelbot.app.runtime_tuning import tune_after_start
from pixelbot.clock import FakeClock, SystemClock, utc
from pixelbot.config import Config
from pixelbot.outcomes import OutcomeBus
from pixelbot.platforms.console import ConsolePrinter, ConsoleStream
from pixelbot.web.keys import overlay_lines

__all__ = ["SCRIPT_START", "announce_web", "run_bot", "run_console"]

# Scripted runs start here, so transcripts are the same on every machine and every day.
SCRIPT_START = utc(2026, 1, 1, 20, 0, 0)


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
    clock = FakeClock(SCRIPT_START) if scripted else SystemClock()
    console = ConsoleStream(
        clock, out, bot_name=config.bot.name, prefix=config.bot.prefix, drain_each_line=scripted
    )
    bus = console_bus(out)
    async with open_app(
        config,
        clock=clock,
        config_path=config_path,
        platforms=[console],
        bus=bus,
        scripted=scripted,
        base_dir=base_dir,
    ) as app:
        announce_web(app, out)  # (a script serves no pages: nothing to say)
        await _converse(app, console, out, script=script, stdin=stdin)
    if not scripted:  # (a transcript ends with the script's last outcome)
        out(f"{config.bot.name}: Bye!")  # after the queue stopped: its last words come first


async def run_bot(config: Config, config_path: Path | None, *, stdin: TextIO | None = None) -> None:
    """``bot.py run``: every enabled platform; the keyboard drives the console if it is on."""
    bus = console_bus(print)
    async with open_app(config, config_path=config_path, bus=bus) as app:
        announce_web(app, print)
        console = app.platforms.get("console")
        if isinstance(console, ConsoleStream):
            await _converse(app, console, print, script=None, stdin=stdin)
        else:
            tune_after_start()
            names = ", ".join(app.platforms) or "none"
            print(f"{config.bot.name} is running on: {names}. Ctrl-C stops it.")
            await asyncio.Event().wait()  # until interrupted
    print(f"{config.bot.name}: Bye!")


def announce_web(app: App, out: Callable[[str], None]) -> None:
    """Where the overlays are, with their key, for the streamer to paste into OBS."""
    if app.web is None or app.web.overlay_key is None:
        return
    out(f"Overlays for OBS (browser sources, 1920x1080), served at {app.web.url}:")
    for line in overlay_lines(app.config.web, app.web.overlay_key, app.web.url):
        out(line)


def console_bus(out: Callable[[str], None]) -> OutcomeBus:
    """A bus whose outcomes the operator sees as ``[kind] ...`` lines."""
    bus = OutcomeBus()
    printer = ConsolePrinter(out)
    bus.subscribe(printer.show, *ConsolePrinter.TYPES)
    return bus


async def _converse(
    app: App,
    console: ConsoleStream,
    out: Callable[[str], None],
    *,
    script: Iterable[str] | None,
    stdin: TextIO | None,
) -> None:
    console.drain = app.queue.drain
    console.after_tick = app.scheduler.run_due
    for name, error in app.commands.cog_errors.items():
        out(f"[console] cog {name} {error}")
    out(f"{app.config.bot.name}: {console.greeting()}")
    if script is not None:
        await console.run_lines(script)
        await app.queue.drain()
        return
    tune_after_start()
    source = stdin or sys.stdin
    while not console.stopped:
        line = await asyncio.to_thread(source.readline)
        if not line:
            break
        await console.handle_line(line)
