"""How an adapter stops taking events without losing the ones it has: the first half of its
``stop()``, shared by Twitch, Discord and Joystick.

What a streamer expects when the bot stops (Ctrl-C, SIGTERM, a restart): nothing new is taken,
and what was taken finishes (a chat line is logged, earns, runs its command and is answered; a
channel-point redemption is queued), within a bounded grace, before the queue and the economy
writer stop behind the platforms. So:

1. **take nothing more**: the adapter's inbox (``platforms/inbox.py``) refuses what the library
   still hands over (counted), and the task that reads (the pump, or Joystick's socket reader)
   ends at a safe point: never while it hands an event over to the feed (``OrderedFeed``), so
   an event is never half-taken;
2. **finish what was taken**, within ``grace`` seconds in all: the pump hands everything still
   in the inbox to the feed (Twitch does not send an event again, and a Discord restart
   identifies anew: an event received is handled now or never), and the feed's jobs run to
   their end, replies included (the client is still connected);
3. **cut the rest**, once the grace is over: the feed's jobs and the pump are cancelled (a
   change already handed to the economy writer is still committed: it finishes what it was
   given), and one warning says how many events were cut off, never handled, or refused.

Cancelling ``stop_events`` (a second Ctrl-C: the assembly cancels the platforms' stops) ends
step 2 at once; step 3 still runs. The adapter closes its connection after this (in a
``finally``, so a hurried stop closes it too).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pixelbot.platforms.feed import OrderedFeed
from pixelbot.platforms.inbox import Inbox

__all__ = ["GRACE", "stop_events"]

log = logging.getLogger(__name__)

GRACE = 5.0  # seconds the events taken get to finish when a platform stops


async def stop_events(
    name: str,
    *,
    feed: OrderedFeed | None,
    reader: asyncio.Task[None] | None,
    inbox: Inbox[Any] | None = None,
    grace: float = GRACE,
    lost: str = "",
) -> None:
    """Steps 1-3 above. ``reader``: the task that hands events to ``feed``; with an ``inbox``
    it ends by itself once the inbox is empty (``InboxClosed``); without one the adapter has
    already told it to end after its hand-over in hand. ``lost``: what becomes of an event
    never handled, for the warning ("Twitch does not send it again")."""
    if inbox is not None:
        inbox.stop_taking()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    cut = 0
    hurried = False
    try:
        if reader is not None and not reader.done():
            async with asyncio.timeout_at(deadline):
                await asyncio.wait({reader})
    except TimeoutError:
        pass
    except asyncio.CancelledError:
        hurried = True
        raise
    finally:
        if reader is not None and not reader.done():  # it holds an event it was handing over
            cut += 1
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        try:
            if feed is not None:
                left = 0.0 if hurried else max(0.0, deadline - loop.time())
                await feed.close(grace=left, quiet=True)
        finally:
            cut += feed.cut if feed is not None else 0
            task = asyncio.current_task()
            hurried = hurried or (task is not None and task.cancelling() > 0)
            never = inbox.close() if inbox is not None else 0
            refused = inbox.refused if inbox is not None else 0
            _report(name, cut, never, refused, grace, hurried, lost)


def _report(
    name: str, cut: int, never: int, refused: int, grace: float, hurried: bool, lost: str
) -> None:
    parts = []
    if cut:
        why = "stopping at once" if hurried else f"after the {grace:g} s grace"
        parts.append(f"{cut:,} cut off mid-way ({why})")
    if never:
        parts.append(f"{never:,} received and never handled")
    if refused:
        parts.append(f"{refused:,} arrived while stopping and were not taken")
    if parts:
        tail = f" ({lost})" if lost and (never or refused) else ""
        log.warning("%s: stopped with events unfinished: %s%s", name, "; ".join(parts), tail)
