"""The queue runner: one loop per kind of item, each performing one item at a time.

Each loop claims the next pending item of its kind (priority, then age), hands it to that
kind's worker, and settles it: done (with the worker's prizes and follow-ups, in one
transaction), failed (refunded), or cancelled (refunded). Whatever happens to one item — a
timeout, an exception, a moderator's ``!skip`` — the loop goes on with the next one, and the
other kinds never wait for it.

Loops sleep until ``wake(kind)`` (called after a redeem is queued) or a short poll. Pauses
are stored (``queue_controls``) so a paused queue stays paused after a restart. At start,
items a crash left ``running`` are retried or refunded (``queue.on_restart``); while running,
the runner renews the leases of its items and, on a database several bots share, takes over
the items of a bot whose leases ran out (see ``economy/queue.py``). ``drain()``
waits until every queue that is not paused is empty: scripted console runs use it so a
transcript shows every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pixelbot.economy.payloads import payload_of
from pixelbot.economy.queue import (
    INTERRUPTED,
    ClaimedItem,
    PendingItem,
    QueueStore,
    Recovered,
    Settled,
)
from pixelbot.errors import DatabaseError, ItemFailed, ItemTimedOut, WriterStopped
from pixelbot.queue.outage import Outage, summary_lines
from pixelbot.queue.worker import Done, Job, Worker

__all__ = ["Outcome", "QueueRunner"]

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # a loop looks for work at least this often, even without a wake-up
CANCEL_GRACE = 5.0  # how long a cancelled worker may take to clean up
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
    summarized: bool = False  # chat hears one line for many (an outage's refunds), not this


Report = Callable[[Outcome], Awaitable[None]]
Timeout = Callable[[str], float | None]  # a kind's timeout in seconds now (None: no limit)
SayFor = Callable[[dict[str, object]], Callable[[str], Awaitable[None]]]
Started = Callable[[ClaimedItem], Awaitable[None]]


@dataclass
class _Current:
    item: ClaimedItem
    task: asyncio.Task[Done]
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)  # skip() or stop()
    cancel_reason: str | None = None  # set by skip(): the task was cancelled on purpose
    cancelled_by: str | None = None
    stop_reason: str | None = None  # set by stop(): the bot is shutting down


class QueueRunner:
    def __init__(
        self,
        store: QueueStore,
        workers: Mapping[str, Worker],
        *,
        timeouts: Mapping[str, float] | Timeout,
        report: Report,
        say_for: SayFor,
        started: Started | None = None,
        retry_on_restart: bool = False,
        only_while_draining: bool = False,
    ) -> None:
        """``only_while_draining``: claim nothing except inside ``drain()``. Scripted console
        runs use it so each line's replies print before the queue acts on them.

        ``timeouts``: fixed seconds per kind, or a function asked for a kind's timeout each
        time an item of that kind starts (so a ``!reload`` applies to the next item, like the
        settings workers read per item; the item already running keeps the one it began with).
        """
        self.store = store
        self.workers = dict(workers)
        self.timeout: Timeout = timeouts if callable(timeouts) else dict(timeouts).get
        self._report = report
        self._say_for = say_for
        self._started = started
        self._retry_on_restart = retry_on_restart
        self.paused: set[str] = set()
        self._wake = {kind: asyncio.Event() for kind in self.workers}
        self._idle = {kind: asyncio.Event() for kind in self.workers}
        self._current: dict[str, _Current] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._leases: asyncio.Task[None] | None = None
        self._stopping = False
        self.claiming = True  # False once the bot begins to stop (``stop_claiming``)
        self._only_while_draining = only_while_draining
        self._draining = 0
        self._performed = 0  # items finished so far (drain() uses it to see progress)
        self._telling_follow_ups = 0  # finishes with follow-ups whose outcome is not told yet
        self._follow_ups_told = asyncio.Event()
        self._follow_ups_told.set()
        self.cancel_grace = CANCEL_GRACE
        self._told_holding: set[str] = set()  # kinds whose outage hold chat has heard of
        for kind in self.workers:
            outage = self.outage(kind)
            if outage is not None:
                outage.listeners.append(functools.partial(self._outage_changed, kind))

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> Recovered:
        """Recover what a crash left running, read the pauses, start one loop per kind."""
        recovered = await self.store.recover(retry=self._retry_on_restart)
        await self._report_recovered(recovered)
        self.paused = await self.store.paused_kinds() & set(self.workers)
        for worker in self.workers.values():
            start = getattr(worker, "start", None)  # optional: e.g. put back an OBS undo
            if start is not None:
                await start()
        for kind in self.workers:
            self._loops.append(asyncio.create_task(self._loop(kind), name=f"queue-{kind}"))
        self._leases = asyncio.create_task(self._keep_leases(), name="queue-leases")
        return recovered

    async def _report_recovered(self, recovered: Recovered) -> None:
        if recovered.retried:
            log.warning("left running by a stopped bot, queued again: %s", recovered.retried)
            for kind in self.workers:
                self.wake(kind)
        for settled in recovered.failed:  # their viewers are told, like for any failure
            log.warning("item #%s left running by a stopped bot was refunded", settled.item_id)
            await self._tell(
                Outcome(
                    settled.kind,
                    settled.item_id,
                    settled.payload or {},
                    settled,
                    error=settled.error or INTERRUPTED,
                )
            )

    async def _keep_leases(self) -> None:
        """Renew the leases of the items running here, every third of a lease. On a database
        other bot processes share, also take over what a process that died left running
        (its leases ran out): retried or refunded like at start."""
        interval = self.store.lease.total_seconds() / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                await self.store.heartbeat([c.item.id for c in self._current.values()])
                if self.store.shared:
                    recovered = await self.store.recover(
                        retry=self._retry_on_restart, at_start=False
                    )
                    await self._report_recovered(recovered)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database hiccuped: try again at the next beat
                log.exception("renewing queue leases failed; trying again")

    def stop_claiming(self) -> None:
        """The bot begins to stop: start no new item (the items in hand go on). One started
        now would be cut by ``stop`` a few seconds later: half a TTS line, then a refund."""
        self.claiming = False

    async def stop(self, grace: float | None = None) -> None:
        """Stop the loops; an item still running is failed and refunded (not left behind).
        A worker gets ``grace`` seconds (default ``CANCEL_GRACE``) to unwind; one that takes
        longer is abandoned (and its item settled anyway), so stopping never hangs."""
        if grace is not None:
            self.cancel_grace = grace
        self._stopping = True
        if self._leases is not None:
            self._leases.cancel()
            await asyncio.gather(self._leases, return_exceptions=True)
            self._leases = None
        for current in list(self._current.values()):
            current.stop_reason = STOPPED_MESSAGE
            current.interrupted.set()
            current.task.cancel()
        for event in self._wake.values():
            event.set()
        if self._loops:
            _, stuck = await asyncio.wait(self._loops, timeout=self.cancel_grace * 2 + 1)
            for loop in stuck:  # settling hangs (the database?): recovery deals with it
                loop.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        self._loops.clear()
        for event in self._idle.values():  # nobody waits in drain() for a stopped queue
            event.set()
        for worker in self.workers.values():
            try:
                await worker.close()
            except Exception:
                log.exception("the %s worker did not close cleanly", worker.kind)

    def outage(self, kind: str) -> Outage | None:
        """The outage state of what ``kind``'s worker needs (OBS), if it has one."""
        outage = getattr(self.workers.get(kind), "outage", None)
        return outage if isinstance(outage, Outage) else None

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
            if (kind is None or kind == current_kind) and not current.task.done():
                current.cancelled_by = by
                current.cancel_reason = reason or f"skipped by {by or 'a moderator'}"
                current.interrupted.set()
                current.task.cancel()
                return current.item
        return None

    async def cancel_pending(
        self, items: list[PendingItem], *, reason: str, by: str | None = None
    ) -> list[Settled]:
        """Cancel and refund these pending items (those that have not started meanwhile)."""
        settled = []
        for item in items:
            result = await self.store.cancel(item.id, reason, actor=by, only_if_pending=True)
            if not result.already_settled:
                settled.append(result)
                await self._tell(
                    Outcome(item.kind, item.id, item.payload, result, error=reason, cancelled_by=by)
                )
        return settled

    # -- the loops --------------------------------------------------------------------------

    async def _loop(self, kind: str) -> None:
        wake, idle = self._wake[kind], self._idle[kind]
        stopped_told = False  # the writer's stop is logged once, not every second
        while not self._stopping:
            try:
                wake.clear()
                held = (
                    kind in self.paused
                    or not self.claiming
                    or (self._only_while_draining and not self._draining)
                )
                outage = self.outage(kind)
                if not held and outage is not None and outage.down:
                    await self._while_down(kind, outage)
                    idle.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), _recheck_after(outage))
                    continue
                item = None if held else await self.store.claim(kind)
                if item is None:
                    idle.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), POLL_SECONDS)
                    continue
                # An item claimed while another item's finish is being told may be that
                # item's follow-up (a wheel's effect prize): it starts once that was told.
                await self._follow_ups_told.wait()
                await self._perform(self.workers[kind], item)
            except asyncio.CancelledError:
                raise
            except DatabaseError:  # an outage, told to the operator once (db/faults.py)
                idle.set()  # nothing can run until it is over: don't hold up drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 1.0)
            except WriterStopped as stopped:  # the writer stopped first (a shutdown out of order)
                # Nothing of it was saved: an item in hand stays running, and the next start
                # retries or refunds it once (``store.recover``), as after a crash. No other
                # item is claimed meanwhile (``QueueStore.claim`` refuses), so none is
                # performed that could not be recorded; the loop only waits for the writer.
                if not stopped_told:
                    log.warning("the %s queue waits for the economy writer: %s", kind, stopped)
                    stopped_told = True
                idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 1.0)
            except Exception:  # the database hiccuped: never let the loop die
                log.exception("the %s queue loop hit an error; going on", kind)
                await asyncio.sleep(1.0)

    async def _perform(self, worker: Worker, item: ClaimedItem) -> None:
        if self._stopping:  # claimed while stopping: it never started, so it waits for later
            await self.store.release(item.id)
            return
        say = self._say_for(item.payload)
        payload = payload_of(item.kind, item.payload)
        job = Job(item.id, item.kind, payload, item.user_id, item.attempts, say)
        if self._started is not None:
            try:
                await self._started(item)
            except Exception:  # telling must never stop the queue
                log.exception("could not report the start of item #%s", item.id)
        task = asyncio.create_task(worker.perform(job), name=f"{item.kind}-{item.id}")
        current = _Current(item, task)
        self._current[item.kind] = current
        timeout = self.timeout(item.kind)  # read now: a reload applies from the next item
        interrupted = asyncio.create_task(current.interrupted.wait())
        try:
            await asyncio.wait({task, interrupted}, timeout=timeout, return_when=FIRST_COMPLETED)
            if current.interrupted.is_set():  # skip() or stop() cancelled it
                await _unwind(task, self.cancel_grace)
            if not task.done() and not current.interrupted.is_set():  # too slow: fail it
                task.cancel()
                await _unwind(task, self.cancel_grace)
                await self._fail(item, str(ItemTimedOut(timeout or 0)))
            elif current.interrupted.is_set() or task.cancelled():
                # if both skip() and stop() asked, the stop's reason wins (the bot is going
                # away and says so)
                if current.stop_reason is not None:
                    await self._fail(item, current.stop_reason)
                else:
                    reason = current.cancel_reason or "cancelled"
                    await self._cancel(item, reason, current.cancelled_by)
            elif isinstance(task.exception(), ItemFailed):
                await self._failed(item, task.exception())
            elif task.exception() is not None:
                error = task.exception()
                log.error(
                    "the %s worker crashed on item #%s",
                    item.kind,
                    item.id,
                    exc_info=(type(error), error, error.__traceback__) if error else None,
                )
                await self._fail(item, BUG_MESSAGE)
            else:
                await self._finish(item, task.result())
        except asyncio.CancelledError:  # the loop itself is cancelled (a stop that hung)
            task.cancel()
            raise
        finally:
            interrupted.cancel()
            self._current.pop(item.kind, None)
            self._performed += 1

    async def _failed(self, item: ClaimedItem, error: BaseException | None) -> None:
        """An item failed. If it failed only because what it needs went down (and changed
        nothing), it waits for the outage to end (``hold``) or is refunded with the rest of
        the queue in one summary (``refund``)."""
        outage = self.outage(item.kind)
        if outage is not None and outage.down and getattr(error, "untouched", False):
            if outage.holding():
                await self.store.release(item.id)
                log.info("#%s waits until %s is back", item.id, outage.service)
                return
            await self._refund_waiting(item.kind, outage, running=item)
            return
        await self._fail(item, str(error))

    # -- outages ------------------------------------------------------------------------------

    def _outage_changed(self, kind: str) -> None:
        self._told_holding.discard(kind)
        self.wake(kind)

    async def _while_down(self, kind: str, outage: Outage) -> None:
        """What waits while ``kind``'s service is down: held (chat hears it once per outage)
        or refunded at once."""
        if outage.refunding():
            await self._refund_waiting(kind, outage)
            return
        if kind in self._told_holding:
            return
        self._told_holding.add(kind)
        waiting = await self.store.pending(kind)
        minutes = outage.hold_limit / 60
        limit = f"{minutes:g} min" if minutes >= 1 else f"{outage.hold_limit:g}s"
        log.warning(
            "%s is down: the %s queue waits (%d items) until it is back, at most %s",
            outage.service,
            kind,
            len(waiting),
            limit,
        )
        for payload, line in summary_lines(
            [item.payload for item in waiting],
            f"{outage.service} is down: {{count}} waiting {{items}} will play when it is back",
            outage.items,
        ):
            await self._say(payload, line)

    async def _refund_waiting(
        self, kind: str, outage: Outage, running: ClaimedItem | None = None
    ) -> None:
        """Refund every item of ``kind`` that waits (and ``running``, which could not start),
        telling the operator about each and chat once."""
        reason = f"{outage.service} is down"
        refunded: list[dict[str, object]] = []
        if running is not None:
            settled = await self.store.fail(running.id, reason)
            await self._tell(
                Outcome(kind, running.id, running.payload, settled, error=reason, summarized=True)
            )
            refunded.append(running.payload)
        for item in await self.store.pending(kind):
            settled = await self.store.cancel(item.id, reason, only_if_pending=True)
            if settled.already_settled:
                continue
            await self._tell(
                Outcome(kind, item.id, item.payload, settled, error=reason, summarized=True)
            )
            refunded.append(item.payload)
        if refunded:
            log.warning("%s is down: refunded %d %s items", outage.service, len(refunded), kind)
        for payload, line in summary_lines(
            refunded, f"{outage.service} is down: refunded {{count}} {{items}}", outage.items
        ):
            await self._say(payload, line)

    async def _say(self, payload: dict[str, object], line: str) -> None:
        try:
            await self._say_for(payload)(line)
        except Exception:  # telling chat must never stop the queue
            log.exception("could not tell chat: %s", line)

    async def _finish(self, item: ClaimedItem, done: Done) -> None:
        # Follow-ups are committed with the item; until its outcome is told, another loop that
        # claims one waits (see _loop), so chat hears "alice won Confetti!" before the confetti.
        if done.follow_ups:
            self._telling_follow_ups += 1
            self._follow_ups_told.clear()
        try:
            try:
                settled = await self.store.finish(
                    item.id, done.result, done.payouts, done.follow_ups
                )
            except (DatabaseError, WriterStopped):  # not saved: it stays running, recovered
                raise  # at the next start (failing it instead could not be saved either)
            except Exception:  # e.g. a result the database cannot store: never leave it running
                log.exception("could not record item #%s as done; failing it instead", item.id)
                await self._fail(item, BUG_MESSAGE)
                return
            await self._tell(Outcome(item.kind, item.id, item.payload, settled, done=done))
        finally:
            if done.follow_ups:
                self._telling_follow_ups -= 1
                if self._telling_follow_ups == 0:
                    self._follow_ups_told.set()
        for follow_up in done.follow_ups:
            self.wake(follow_up.kind)

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


def _recheck_after(outage: Outage) -> float:
    """While held, look again when the hold runs out (or at the usual poll)."""
    if outage.holding():
        return min(POLL_SECONDS, outage.hold_left() + 0.01)
    return POLL_SECONDS


async def _unwind(task: asyncio.Task[Done], grace: float) -> None:
    """Give a cancelled worker ``grace`` seconds to clean up (an OBS undo); past that it is
    abandoned, so one stuck worker never stops the queue."""
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        log.warning("worker task %s did not stop within %ss", task.get_name(), grace)
