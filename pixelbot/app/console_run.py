"""Running the bot from the command line: ``bot.py run`` (every enabled platform) and
``bot.py console`` (the console stream alone, live or scripted).

Both go through ``open_app``. With the console among the platforms, the keyboard (or a
script) feeds it; otherwise the bot runs until it is interrupted. Ctrl-C and SIGTERM stop
either the same way: gracefully, and at once when sent twice (``app/signals.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from pixelbot.app.assembly import App, open_app
from pixelbot.app.runtime_tuning import tune_after_start
from pixelbot.app.signals import StopSignals
from pixelbot.clock import FakeClock, SystemClock, utc
from pixelbot.config import Config
from pixelbot.outcomes import OutcomeBus
from pixelbot.platforms.console import ConsolePrinter, ConsoleStream
from pixelbot.platforms.stopping import GRACE
from pixelbot.web.keys import overlay_lines

__all__ = ["SCRIPT_START", "announce_web", "run_bot", "run_console"]

log = logging.getLogger(__name__)

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
    signals = StopSignals()
    with signals.installed(), _stopped_by(signals):
        async with open_app(
            config,
            clock=clock,
            config_path=config_path,
            platforms=[console],
            bus=bus,
            scripted=scripted,
            base_dir=base_dir,
            hurry=signals.hurry,
        ) as app:
            # (a script does not wait for a stop between its lines: a signal cancels it)
            with contextlib.nullcontext() if scripted else _serving(signals):
                announce_web(app, out)  # (a script serves no pages: nothing to say)
                await _converse(
                    app, console, out, script=script, stdin=stdin, stop=signals.requested
                )
    if not scripted:  # (a transcript ends with the script's last outcome)
        out(f"{config.bot.name}: Bye!")  # after the queue stopped: its last words come first


async def run_bot(config: Config, config_path: Path | None, *, stdin: TextIO | None = None) -> None:
    """``bot.py run``: every enabled platform; the keyboard drives the console if it is on."""
    bus = console_bus(print)
    signals = StopSignals()
    with signals.installed(), _stopped_by(signals):
        async with open_app(config, config_path=config_path, bus=bus, hurry=signals.hurry) as app:
            with _serving(signals):
                announce_web(app, print)
                console = app.platforms.get("console")
                if isinstance(console, ConsoleStream):
                    await _converse(
                        app, console, print, script=None, stdin=stdin, stop=signals.requested
                    )
                else:
                    tune_after_start()
                    names = ", ".join(app.platforms) or "none"
                    print(f"{config.bot.name} is running on: {names}. Ctrl-C stops it.")
                    await signals.requested.wait()
    print(f"{config.bot.name}: Bye!")


@contextlib.contextmanager
def _serving(signals: StopSignals) -> Iterator[None]:
    signals.started = True  # (a stop signal from now on is waited for, not a cancellation)
    yield


@contextlib.contextmanager
def _stopped_by(signals: StopSignals) -> Iterator[None]:
    """A stop signal that had to cancel (the bot was starting, or a second one came) ends
    the run as a stop, not as an error: what had started was stopped on the way out."""
    try:
        yield
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not signals.received or task is None:
            raise
        task.uncancel()


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
    stop: asyncio.Event | None = None,
) -> None:
    """Feed the console: the script's lines, or the keyboard's until end of input, ``/quit``
    or ``stop`` (a stop signal: the line in hand is finished first, nothing more is read)."""
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
        line = await _next_line(source, stop)
        if not line:
            break
        await _finish_line(console.handle_line(line), stop, app.hurry)


async def _finish_line(
    work: Coroutine[Any, Any, None], stop: asyncio.Event | None, hurry: asyncio.Event
) -> None:
    """Handle one typed line to its end. Once a stop is asked for meanwhile, it gets the grace
    a platform's events in hand get (``platforms/stopping.py``), none past a hurry; then it is
    cut off, and the log says so."""
    task = asyncio.ensure_future(work)
    try:
        if stop is None or await _done_before(task, stop, None):
            await task
            return
        if not await _done_before(task, hurry, GRACE):
            why = "stopping at once" if hurry.is_set() else f"after the {GRACE:g} s grace"
            log.warning("console: the line in hand was cut off mid-way (%s)", why)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _done_before(
    task: asyncio.Future[None], event: asyncio.Event, seconds: float | None
) -> bool:
    """Wait for ``task``, or until ``event`` is set or ``seconds`` pass; whether it is done."""
    waits: list[asyncio.Future[Any]] = [task, asyncio.ensure_future(event.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waits[1].cancel()
    return task.done()


async def _next_line(source: TextIO, stop: asyncio.Event | None) -> str:
    """The next line typed; "" at the end of input or once ``stop`` is set. It is read in a
    daemon thread of its own: a reading thread of the default executor is joined when the
    loop closes, so a stop waited for one more line of input before the bot could exit."""
    if stop is not None and stop.is_set():
        return ""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def settle(text: str | None, error: BaseException | None) -> None:
        if line.done():  # (given up: the bot is stopping)
            return
        if error is not None:
            line.set_exception(error)
        else:
            line.set_result(text or "")

    def read() -> None:
        text: str | None = None
        error: BaseException | None = None
        try:
            text = source.readline()
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # (the loop is closed: the bot has stopped)
            loop.call_soon_threadsafe(settle, text, error)

    threading.Thread(target=read, name="console-input", daemon=True).start()
    if stop is None:
        return await line
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    waits: list[asyncio.Future[Any]] = [line, stopping]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if line.done():
        return line.result()
    line.cancel()
    return ""
