"""What a platform library has received and the adapter has not yet taken: a bounded inbox.

An adapter's pump takes events from its inbox one at a time and hands them to an
``OrderedFeed``, which waits when the bot is behind (the database stalls, a flood). The
library's receive path keeps filling the inbox meanwhile. Unbounded, that is memory growing
for as long as the bot stays behind; bounded at ``INBOX_LIMIT`` events, what happens at the
bound depends on what the library lets the adapter do:

* **wait** (``room``): where the adapter's hook runs inside a coroutine the library awaits
  before it reads its socket again (discord.py's gateway ``received_message``), the adapter
  awaits room there. The library stops reading, the socket's buffers fill, and the platform
  holds the rest: real back-pressure, nothing dropped. (Discord's gateway copes with a reader
  that pauses: past discord.py's heartbeat timeout it reconnects and resumes, and Discord
  replays what was sent meanwhile.)
* **shed** (``put`` with ``sheddable``): where the hook is strictly synchronous and the
  library reads on regardless (twitchio's ``Client.dispatch``; its EventSub socket must keep
  being read, or its keepalive check reconnects to a new session and whatever Twitch sent to
  the old one is gone), a full inbox drops what ``sheddable`` says it may: plain chat lines.
  Anything else (a redemption, a sub, bits, a follow, a raid, a ban, a stream going live)
  always goes in, past the bound if need be: those are rare next to chat and each one pays
  or charges someone. Every line dropped is counted (``shed``, in the platform's status) and
  a warning names how many, at most once a minute (``WARN_EVERY``).

The bound is a constant, not a setting: it is only ever reached when the bot is already
behind, and a streamer has nothing to weigh it against. A Twitch chat line waiting here costs
about 8 KB (twitchio's parsed payload and the decoded frame it keeps, measured), so a full
inbox holds ~40 MB; at the 5,000 lines a second of the chat benchmark that is a second of
flood, in a busy real channel (100 lines a second) most of a minute of a stalled database.

Stopping (``platforms/stopping.py``): ``stop_taking`` refuses whatever the library hands over
from then on (counted in ``refused``), lets the receive path go on at once, and makes ``get``
raise ``InboxClosed`` once what was taken before is all given out, so the pump ends by itself;
``close`` then says how many were never given out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from pixelbot.clock import Clock

__all__ = ["INBOX_LIMIT", "WARN_EVERY", "Inbox", "InboxClosed"]

log = logging.getLogger(__name__)

INBOX_LIMIT = 5_000  # events waiting for the adapter's pump
WARN_EVERY = timedelta(minutes=1)  # at most one "dropping chat lines" warning this often

T = TypeVar("T")


class InboxClosed(Exception):
    """``get`` on an inbox that takes nothing any more and has given out everything it held."""


LOST_KEPT = 1_000  # items kept for the adapter when lost at a stop (the rest are counted)


def _never(_item: object) -> bool:
    return False


class Inbox(Generic[T]):
    """A FIFO of received items between a library's receive path and the adapter's pump.

    ``platform`` names it in the log; ``sheddable`` says which items a full inbox may drop
    (default: none; the receive path must then await ``room``). ``kept_when_lost``: items the
    adapter must still act on when they are lost at a stop (refused while stopping, or never
    given out): they are kept in ``lost`` (at most ``LOST_KEPT``) for it."""

    def __init__(
        self,
        platform: str,
        clock: Clock,
        *,
        limit: int = INBOX_LIMIT,
        sheddable: Callable[[T], bool] = _never,
        shed_what: str = "plain chat lines",
        kept_when_lost: Callable[[T], bool] = _never,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._platform = platform
        self._clock = clock
        self.limit = limit
        self._sheddable = sheddable
        self._shed_what = shed_what
        self._items: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._freed = asyncio.Event()
        self.received = 0  # items offered since start (taken or dropped)
        self.shed = 0  # items dropped since start
        self.last_shed_at: datetime | None = None
        self._unreported = 0  # dropped since the last warning
        self._warned_at: datetime | None = None
        self.taking = True  # False once the adapter stops (``stop_taking``)
        self.refused = 0  # items handed over after that, and not taken
        self._kept_when_lost = kept_when_lost
        self.lost: list[T] = []  # lost at a stop, and ``kept_when_lost``

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.limit

    def put(self, item: T) -> bool:
        """Take an item (never waits). A full inbox drops a sheddable one (returns False)."""
        self.received += 1
        if not self.taking:
            self.refused += 1
            self._keep_lost(item)
            return False
        if self.full and self._sheddable(item):
            self._drop()
            return False
        self._items.append(item)
        self._arrived.set()
        return True

    async def room(self) -> None:
        """Wait until fewer than ``limit`` items wait (at once when that is so)."""
        while self.full and self.taking:
            self._freed.clear()
            await self._freed.wait()

    async def get(self) -> T:
        """The oldest item, waiting for one if there is none (``InboxClosed`` once stopped
        and empty)."""
        while not self._items:
            if not self.taking:
                raise InboxClosed(self._platform)
            self._arrived.clear()
            await self._arrived.wait()
        item = self._items.popleft()
        if not self.full:
            self._freed.set()
        return item

    def detail(self) -> str:
        """A line for the platform's status (empty while nothing is wrong)."""
        parts = []
        if self.full:
            parts.append(f"the bot is behind: {len(self._items):,} events waiting")
        if self.shed and self.last_shed_at is not None:
            parts.append(
                f"{self._shed_what} dropped while the bot was behind: {self.shed:,} "
                f"(the last at {self.last_shed_at:%H:%M:%S} UTC)"
            )
        return "; ".join(parts)

    def reopen(self) -> None:
        """The adapter starts (again): take items."""
        self.taking = True
        self.refused = 0
        self.lost.clear()

    def stop_taking(self) -> None:
        """The adapter stops: take nothing more (the receive path is let go at once); what
        is already here is still given out."""
        self.taking = False
        self._arrived.set()  # (a pump waiting for an item hears it is over)
        self._freed.set()  # (a receive path waiting for room goes on: nothing more is taken)

    def close(self) -> int:
        """The adapter has stopped: report drops no warning has named yet, and forget what
        was never given out; returns how many that was."""
        self.taking = False
        if self._unreported:
            self._warn()
        left = len(self._items)
        for item in self._items:
            self._keep_lost(item)
        self._items.clear()
        return left

    def _keep_lost(self, item: T) -> None:
        if len(self.lost) < LOST_KEPT and self._kept_when_lost(item):
            self.lost.append(item)

    def _drop(self) -> None:
        self.shed += 1
        self._unreported += 1
        now = self.last_shed_at = self._clock.now()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY:
            self._warn()

    def _warn(self) -> None:
        since = "" if self._warned_at is None else f" since {self._warned_at:%H:%M:%S} UTC"
        log.warning(
            "%s: the bot is behind (%s events waiting: the database is slow, or a flood), so "
            "%s are dropped to catch up: %s%s, %s in all; no other kind of event is dropped",
            self._platform,
            f"{len(self._items):,}",
            self._shed_what,
            f"{self._unreported:,}",
            since,
            f"{self.shed:,}",
        )
        self._warned_at = self._clock.now()
        self._unreported = 0
