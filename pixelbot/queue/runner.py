"""The queue runner: one loop per kind of item, each performing one item at a time.

Each loop claims the next pending item of its kind (priority, then age), hands it to that
kind's worker, and settles it: done (with the worker's prizes and follow-ups, in one
transaction), failed (refunded), or cancelled (refunded). Whatever happens to one item — a
timeout, an exception, a moderator's ``!skip`` — the loop goes on with the next one, and the
other kinds never wait for it.

Loops sleep until ``wake(kind)`` (called after a redeem is queued) or a short poll. Pauses
are stored (``queue_controls``) so a paused queue stays paused after a restart. At start,
items a crash left ``running`` are retried or refunded (``queue.on_restart``). ``drain()``
waits until every queue that is not paused is empty: scripted console runs use it so a
transcript shows every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pixelbot.economy.queue import INTERRUPTED, ClaimedItem, PendingItem, QueueStore, Settled
from pixelbot.errors import ItemFailed, ItemTimedOut
from pixelbot.queue.worker import Done, Job, Worker

__all__ = ["Outcome", "QueueRunner"]

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # a loop looks for work at least this often, even without a wake-up
STOPPED_MESSAGE = "the bot stopped before it finished"
BUG_MESSAGE = "something went wrong on our side (the streamer can see the details in the log)"


@dataclass(frozen=True)
class Outcome:
    """How one item ended, for the bot to tell chat and the operator."""

    kind: str
    item_id: int
    payload: dict[str, object]
    settled: Settled
    done: Done | None = None  # when it was done
    error: str | None = None  # why it failed or was cancelled
    cancelled_by: str | None = None


Report = Callable[[Outcome], Awaitable[None]]
SayFor = Callable[[dict[str, object]], Callable[[str], Awaitable[None]]]


@dataclass
class _Current:
    item: ClaimedItem
    task: asyncio.Task[Done]
    cancel_reason: str | None = None  # set by skip(): the task was cancelled on purpose
    cancelled_by: str | None = None
    stop_reason: str | None = None  # set by stop(): the bot is shutting down


class QueueRunner:
    def __init__(
        self,
        store: QueueStore,
        workers: Mapping[str, Worker],
        *,
        timeouts: Mapping[str, float],
        report: Report,
        say_for: SayFor,
        retry_on_restart: bool = False,
        only_while_draining: bool = False,
    ) -> None:
        """``only_while_draining``: claim nothing except inside ``drain()``. Scripted console
        runs use it so each line's replies print before the queue acts on them."""
        self.store = store
        self.workers = dict(workers)
        self.timeouts = dict(timeouts)
        self._report = report
        self._say_for = say_for
        self._retry_on_restart = retry_on_restart
        self.paused: set[str] = set()
        self._wake = {kind: asyncio.Event() for kind in self.workers}
        self._idle = {kind: asyncio.Event() for kind in self.workers}
        self._current: dict[str, _Current] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._only_while_draining = only_while_draining
        self._draining = 0
        self._performed = 0  # items finished so far (drain() uses it to see progress)

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> list[int]:
        """Recover what a crash left running, read the pauses, start one loop per kind.
        Returns the ids of the recovered items."""
        recovered = await self.store.recover(retry=self._retry_on_restart)
        if recovered:
            what = "retried" if self._retry_on_restart else "refunded"
            log.warning("queue items left running by the last run were %s: %s", what, recovered)
        for settled in self.store.interrupted:  # their viewers are told, like any failure
            await self._tell(
                Outcome(
                    settled.kind, settled.item_id, settled.payload or {}, settled, error=INTERRUPTED
                )
            )
        self.store.interrupted.clear()
        self.paused = await self.store.paused_kinds() & set(self.workers)
        for kind in self.workers:
            self._loops.append(asyncio.create_task(self._loop(kind), name=f"queue-{kind}"))
        return recovered

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the loops; an item still running is failed and refunded (not left behind)."""
        self._stopping = True
        for current in list(self._current.values()):
            current.stop_reason = STOPPED_MESSAGE
            current.task.cancel()
        for event in self._wake.values():
            event.set()
        if self._loops:
            _, stuck = await asyncio.wait(self._loops, timeout=grace)
            for loop in stuck:  # a worker ignored cancellation: recovery deals with its item
                loop.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        self._loops.clear()
        for worker in self.workers.values():
            try:
                await worker.close()
            except Exception:
                log.exception("the %s worker did not close cleanly", worker.kind)

    def wake(self, kind: str) -> None:
        event = self._wake.get(kind)
        if event is not None:
            event.set()

    async def drain(self) -> None:
        """Return once every queue that is not paused is empty and idle."""
        self._draining += 1
        try:
            while self._loops and not self._stopping:
                performed = self._performed
                for kind in self.workers:
                    self._idle[kind].clear()
                    self.wake(kind)
                await asyncio.gather(*(self._idle[kind].wait() for kind in self.workers))
                if self._performed == performed:  # nothing ran meanwhile (nor follow-ups)
                    return
        finally:
            self._draining -= 1

    # -- moderator controls -----------------------------------------------------------------

    async def pause(self, kind: str, *, by: str | None = None) -> None:
        """Stop claiming items of ``kind`` (the one running finishes). Survives a restart."""
        await self.store.set_paused(kind, True, by=by)
        self.paused.add(kind)

    async def resume(self, kind: str, *, by: str | None = None) -> None:
        await self.store.set_paused(kind, False, by=by)
        self.paused.discard(kind)
        self.wake(kind)

    def running(self) -> list[ClaimedItem]:
        return [current.item for current in self._current.values()]

    def skip(
        self, kind: str | None = None, *, by: str | None = None, reason: str | None = None
    ) -> ClaimedItem | None:
        """Cancel the item running now (of ``kind``, or the first running one); its viewer
        is refunded when the worker has stopped. None if nothing is running."""
        for current_kind, current in self._current.items():
            if kind is None or kind == current_kind:
                current.cancelled_by = by
                current.cancel_reason = reason or f"skipped by {by or 'a moderator'}"
                current.task.cancel()
                return current.item
        return None

    async def cancel_pending(
        self, items: list[PendingItem], *, reason: str, by: str | None = None
    ) -> list[Settled]:
        """Cancel and refund these pending items (those that have not started meanwhile)."""
        settled = []
        for item in items:
            result = await self.store.cancel(item.id, reason, actor=by)
            if not result.already_settled:
                settled.append(result)
                await self._tell(
                    Outcome(item.kind, item.id, item.payload, result, error=reason, cancelled_by=by)
                )
        return settled

    # -- the loops --------------------------------------------------------------------------

    async def _loop(self, kind: str) -> None:
        wake, idle = self._wake[kind], self._idle[kind]
        while not self._stopping:
            try:
                wake.clear()
                held = kind in self.paused or (self._only_while_draining and not self._draining)
                item = None if held else await self.store.claim(kind)
                if item is None:
                    idle.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), POLL_SECONDS)
                    continue
                await self._perform(self.workers[kind], item)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database hiccuped: never let the loop die
                log.exception("the %s queue loop hit an error; going on", kind)
                await asyncio.sleep(1.0)

    async def _perform(self, worker: Worker, item: ClaimedItem) -> None:
        say = self._say_for(item.payload)
        job = Job(item.id, item.kind, item.payload, item.user_id, item.attempts, say)
        task = asyncio.create_task(worker.perform(job), name=f"{item.kind}-{item.id}")
        current = _Current(item, task)
        self._current[item.kind] = current
        timeout = self.timeouts.get(item.kind)
        try:
            done = await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            await _settle_quietly(task)
            await self._fail(item, str(ItemTimedOut(timeout or 0)))
        except asyncio.CancelledError:
            await _settle_quietly(task)
            if current.cancel_reason is not None:  # a moderator's skip
                await self._cancel(item, current.cancel_reason, current.cancelled_by)
            elif current.stop_reason is not None:  # stop()
                await self._fail(item, current.stop_reason)
            else:
                raise
        except ItemFailed as exc:
            await self._fail(item, str(exc))
        except Exception:
            log.exception("the %s worker crashed on item #%s", item.kind, item.id)
            await self._fail(item, BUG_MESSAGE)
        else:
            settled = await self.store.finish(item.id, done.result, done.payouts, done.follow_ups)
            for follow_up in done.follow_ups:
                self.wake(follow_up.kind)
            await self._tell(Outcome(item.kind, item.id, item.payload, settled, done=done))
        finally:
            self._current.pop(item.kind, None)
            self._performed += 1

    async def _fail(self, item: ClaimedItem, error: str) -> None:
        settled = await self.store.fail(item.id, error)
        await self._tell(Outcome(item.kind, item.id, item.payload, settled, error=error))

    async def _cancel(self, item: ClaimedItem, reason: str, by: str | None) -> None:
        settled = await self.store.cancel(item.id, reason, actor=by)
        await self._tell(
            Outcome(item.kind, item.id, item.payload, settled, error=reason, cancelled_by=by)
        )

    async def _tell(self, outcome: Outcome) -> None:
        try:
            await self._report(outcome)
        except Exception:  # telling chat must never stop the queue
            log.exception("could not report the outcome of item #%s", outcome.item_id)


async def _settle_quietly(task: asyncio.Task[Done]) -> None:
    """Wait for a cancelled worker task to unwind; whatever it raises is moot now."""
    with contextlib.suppress(BaseException):
        await task
