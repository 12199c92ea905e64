"""A platform adapter whose hand-off to the bot is held shut, as when the database stalls: for
the tests of what an adapter does when it falls behind (``test_twitch_inbox.py``,
``test_discord_inbox.py``; the inbox is ``pixelbot/platforms/inbox.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from pixelbot.events import Event
from pixelbot.platforms.feed import event_key
from pixelbot.platforms.inbox import Inbox


class Stall:
    """Holds ``adapter.feed`` (through which an adapter gives the bot each event) shut until
    ``gate`` opens: the events in flight wait there, the adapter's pump waits behind them, and
    its inbox fills. ``fed`` are the events the bot got, in the order it got them."""

    def __init__(self, adapter: Any) -> None:
        self.gate = asyncio.Event()
        self.fed: list[Event] = []
        self.handled = 0  # of those, how many the bot is done with
        self._feed: Callable[[Event], Awaitable[None]] = adapter.feed
        adapter.feed = self._held

    async def _held(self, event: Event) -> None:
        await self.gate.wait()
        self.fed.append(event)
        await self._feed(event)
        self.handled += 1


class Sizes:
    """The inbox's size at every turn of the event loop (the memory it holds), while running."""

    def __init__(self, inbox: Inbox[Any]) -> None:
        self.seen: list[int] = []
        self._inbox = inbox
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            self.seen.append(len(self._inbox))
            await asyncio.sleep(0)

    def stop(self) -> int:
        """Stop watching; the largest size seen."""
        self._task.cancel()
        return max(self.seen)


async def handed_over(inbox: Inbox[Any], send: Awaitable[object]) -> None:
    """Send one frame from the fake platform and wait until the library has handed it to the
    adapter (one at a time: a burst read at once could fill the inbox before the pump runs)."""
    before = inbox.received
    await send
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while inbox.received == before:
        assert loop.time() < deadline, "the library never handed the frame over"
        await asyncio.sleep(0)


def in_order_per_viewer(events: list[Event]) -> dict[Hashable, list[str]]:
    """Each viewer's event ids, in the order given."""
    found: dict[Hashable, list[str]] = {}
    for event in events:
        found.setdefault(event_key(event), []).append(event.id)
    return found
