"""Feeding a platform's events into the bot: in order where order matters, at once where not.

A platform adapter reads its socket in one task. Awaiting each event to completion there (its
commit, then its command) before reading the next lets the group-commit writer
(``economy/writer.py``) see one operation at a time, and a busy chat falls behind. An
``OrderedFeed`` sits between the reading task and the bot:

* events with the same key (a viewer's ``(platform, platform_user_id)``) run one after another,
  in the order they were submitted: a viewer's ``!spend`` sees their earn, a ``!tts`` is queued
  before the deletion of its chat line (keyed by the line's author) looks for it;
* events with different keys run concurrently, at most ``limit`` in flight; when that many are
  in flight, ``submit`` waits, so the reading task stops reading (back-pressure reaches the
  socket instead of memory growing);
* an event without a key (stream online or offline, a deletion whose author is unknown) is a
  barrier: it starts once everything before it has finished, and nothing after it starts until
  it is done (stream sessions decide per-stream limits and payouts).

A job that raises is logged and forgotten; the others run on. ``close`` waits a moment for
what is in flight, then cancels the rest and waits for it, so no task outlives the adapter
(how an adapter stops as a whole: ``platforms/stopping.py``).

``event_key`` says which key an event orders by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

from pixelbot.events import Event, MessageDeleted, Viewer

__all__ = ["DEFAULT_LIMIT", "Job", "OrderedFeed", "event_key"]

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 256  # events in flight per platform
Job = Callable[[], Awaitable[object]]


def event_key(event: Event) -> Hashable | None:
    """The viewer an event must stay in order with; None: the event is a barrier.

    A chat line, a ban, a redemption, a presence: the viewer it is about (``viewer``); a
    deletion: the deleted line's author, when the platform says; a gift: the gifter. Anything
    naming nobody (stream online or offline, an anonymous gift) is a barrier."""
    if isinstance(event, MessageDeleted):
        return None if event.author is None else event.author.key
    viewer = getattr(event, "viewer", None) or event.actor
    return viewer.key if isinstance(viewer, Viewer) else None


class OrderedFeed:
    """Runs submitted jobs per key in order, across keys concurrently (see the module)."""

    def __init__(self, name: str, *, limit: int = DEFAULT_LIMIT, grace: float = 5.0) -> None:
        """``name`` prefixes log lines ("twitch"); ``grace``: seconds ``close`` waits for the
        jobs in flight before it cancels them."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._name = name
        self._limit = limit
        self._grace = grace
        self._room = asyncio.Semaphore(limit)
        self._running: set[asyncio.Task[None]] = set()
        self._tails: dict[Hashable, asyncio.Task[None]] = {}  # the last job of each key
        self._closed = False
        self.failed = 0  # jobs that raised
        self.cut = 0  # jobs cancelled by ``close``

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not finished (waiting for their key, or running)."""
        return len(self._running)

    async def submit(self, key: Hashable | None, job: Job, what: str = "an event") -> None:
        """Run ``job`` in its turn; returns once it is started or queued behind its key (a
        barrier: once it is done). ``what`` names it in the log if it fails."""
        if self._closed:
            raise RuntimeError(f"{self._name}: the feed is closed")
        if key is None:
            await self.drain()
            await self._run(job, what)
            return
        await self._room.acquire()
        before = self._tails.get(key)
        task = asyncio.create_task(self._after(before, job, what))
        self._running.add(task)
        self._tails[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))

    async def drain(self) -> None:
        """Wait until every job submitted so far has finished."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def close(self, grace: float | None = None, *, quiet: bool = False) -> int:
        """Stop taking jobs; give those in flight ``grace`` seconds (default: the feed's),
        then cancel them. Returns how many were cancelled (``cut``; logged unless ``quiet``).
        Cancelled itself while it waits (a hurried shutdown), it still cancels them all."""
        self._closed = True
        try:
            if self._running:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._grace if grace is None else grace):
                        await self.drain()
        finally:
            pending = set(self._running)
            for task in pending:
                task.cancel()
            self.cut = len(pending)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                if not quiet:
                    log.warning("%s: stopped with %d event(s) unfinished", self._name, self.cut)
        return self.cut

    async def _after(self, before: asyncio.Task[None] | None, job: Job, what: str) -> None:
        if before is not None and not before.done():
            await asyncio.wait({before})  # (its own failure is its own: it was logged)
        await self._run(job, what)

    async def _run(self, job: Job, what: str) -> None:
        try:
            await job()
        except Exception:
            self.failed += 1
            log.exception("%s: could not handle %s", self._name, what)

    def _finished(self, key: Hashable, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]
        self._room.release()
