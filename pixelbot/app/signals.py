"""How ``bot.py run`` and ``bot.py console`` stop: Ctrl-C (SIGINT) and SIGTERM (what systemd,
Docker and ``kill`` send) the same way.

1. The first signal asks for a graceful stop: the bot takes no new events, lets those in hand
   finish within the grace (``app/assembly.py``), stops the rest in order and exits with code 0.
   While the bot is still starting, it stops starting instead (what started is stopped again).
2. A second signal stops at once: the graces end (``App.hurry``), the events still in hand are
   cut (logged), and the economy writer still finishes the operation it is committing, so the
   database stays whole.
3. After that the signals are the system's again: a third ends the process on the spot (SQLite
   rolls back a commit it interrupts; nothing is corrupted, the events in hand are lost).

Without this, asyncio's own Ctrl-C handling cancelled whatever was running (the console's line
in hand too), SIGTERM killed the process with no shutdown at all, and the live console waited
for one more line of input before it could exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "StopSignals"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Turns SIGINT and SIGTERM into ``requested`` (stop gracefully) and ``hurry`` (now)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()
        self.received = 0
        # The task to cancel while the bot starts (nothing waits for ``requested`` yet).
        self._task: asyncio.Task[object] | None = None
        self.started = False  # the bot has started: its run waits for ``requested``

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the stop signals in the running loop (the main task's) until the block ends."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self._received, signum)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            log.debug("no stop signal handling here: not in the main thread")
        try:
            yield self
        finally:
            for signum in STOP_SIGNALS:
                with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                    loop.remove_signal_handler(signum)

    def _received(self, signum: int) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            self.requested.set()
            if self.started:
                log.warning(
                    "%s: stopping; the events in hand get a few seconds to finish "
                    "(send it again to stop at once)",
                    name,
                )
            else:
                log.warning("%s: stopping while starting", name)
                self._cancel()
            return
        log.warning("%s again: stopping at once", name)
        self.hurry.set()
        loop = asyncio.get_running_loop()
        for signum_ in STOP_SIGNALS:  # a third one ends the process on the spot
            loop.remove_signal_handler(signum_)
            signal.signal(signum_, signal.SIG_DFL)

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
