"""How the bot process runs Python: its cyclic garbage collector, and its threads' turns.

A busy chat turns every message into a handful of short-lived objects, and reference counting
frees nearly all of them (the writer's batches are kept free of reference cycles for that
reason, see ``economy/batch.py``). The cyclic collector with its default thresholds still runs
thousands of times per busy minute, and its full passes rescan everything alive (in-flight
batches, the writer's cache); collecting only after 50,000 net new container objects takes
nearly all of that away (figures: README, "Why the settings are what they are").

The database work runs in threads of its own (the writer's, the readers'), and Python lets one
thread run at a time: a thread that wants to run waits until the running one is asked to let
go, after ``sys.getswitchinterval()`` (5 ms by default). The event loop, which answers chat,
then waits up to that long at every trip to the database; at 1 ms a `!points` reply under a
busy chat came back about twice as soon (figures: README).
"""

from __future__ import annotations

import gc
import sys

__all__ = ["SWITCH_INTERVAL", "THRESHOLDS", "tune_after_start"]

# (youngest generation, middle, oldest): see gc.set_threshold
THRESHOLDS = (50_000, 20, 100)
SWITCH_INTERVAL = 0.001  # seconds a thread may run while another waits to (sys.setswitchinterval)


def tune_after_start() -> None:
    """Call once the bot has started: what start-up built lives for the whole run, so it is
    frozen out of every later scan, and the collector runs less often; threads take shorter
    turns."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
