"""How the bot process uses Python's cyclic garbage collector.

A busy chat turns every message into a handful of short-lived objects, and reference counting
frees nearly all of them (the writer's batches are kept free of reference cycles for that
reason, see ``economy/batch.py``). The cyclic collector with its default thresholds still runs
thousands of times per busy minute, and its full passes rescan everything alive (in-flight
batches, the writer's cache); collecting only after 50,000 net new container objects takes
nearly all of that away (figures: README, "Why the settings are what they are").
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_after_start"]

# (youngest generation, middle, oldest): see gc.set_threshold
THRESHOLDS = (50_000, 20, 100)


def tune_after_start() -> None:
    """Call once the bot has started: what start-up built lives for the whole run, so it is
    frozen out of every later scan, and the collector runs less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
