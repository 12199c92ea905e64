"""The durable queue's state changes: claim the next item, settle it as done, failed or
cancelled, recover what a crash left running, and the moderators' pauses.

Several bot processes may share one queue (on PostgreSQL): a claim skips rows another process
is claiming (``FOR UPDATE SKIP LOCKED``), and a running item carries a lease, its holder and an
expiry, that the holder renews while it works (``heartbeat``). Recovery takes only items whose
lease ran out, so it never refunds an item a live process is still performing; a SQLite file
belongs to one bot, whose start finds every running item orphaned.

A failed or cancelled item is refunded in the same transaction that settles it, exactly once:
settling only applies to an item that is still pending or running, and the refund is a ledger
row naming the charge (``UNIQUE(refund_of)``). Settling the same item twice changes nothing the
second time. A done item's prizes (points, XP) and follow-up items (a wheel's effect) are
committed in the same transaction that marks it done, so a crash can never pay a prize twice
or lose it. The runner (``pixelbot/queue/runner.py``) sits above this and calls it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.batch import GRANT, Batch, LevelUp, Needs
from pixelbot.economy.writer import RowsOperation, Writer
from pixelbot.errors import WriterStopped

__all__ = [
    "ClaimedItem",
    "FollowUp",
    "Payout",
    "PendingItem",
    "QueueStore",
    "Recovered",
    "Settled",
]

QUEUE_ITEMS = Base.metadata.tables["queue_items"]
QUEUE_CONTROLS = Base.metadata.tables["queue_controls"]
USERS = Base.metadata.tables["users"]
T = TypeVar("T")
Outcome = Literal["done", "failed", "cancelled"]
INTERRUPTED = "the bot stopped while it was running"
GAVE_UP = "the bot stopped while it was running, {} times; it is not tried again"
MAX_ATTEMPTS = 3  # an item is run at most this often (crash recovery retries it)
# How long a claim holds an item without a heartbeat. The runner renews every third of it, so a
# process must miss two renewals in a row before another one takes its items over.
LEASE = timedelta(seconds=30)


def process_owner() -> str:
    """A name for this bot process in ``queue_items.lease_owner``: host, pid and a nonce, so a
    restarted process with a recycled pid is still someone else."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Payout:
    """Points and/or XP paid to a viewer when an item is done (a wheel prize)."""

    user_id: int
    reason: str
    points: int = 0
    xp: int = 0


@dataclass(frozen=True)
class FollowUp:
    """A new queue item enqueued when an item is done (free: nobody is charged)."""

    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    kind: str
    payload: dict[str, Any]
    user_id: int | None
    charge_ref: str | None
    attempts: int


@dataclass(frozen=True)
class Settled:
    item_id: int
    status: Outcome
    already_settled: bool = False  # it was done, failed or cancelled before: nothing changed
    refunded: int = 0  # points returned to the viewer
    balance: int | None = None  # the viewer's balance after the refund
    payload: dict[str, Any] | None = None
    user_id: int | None = None
    paid_points: int = 0  # prizes actually paid (points stop at the maximum balance)
    paid_xp: int = 0
    level_up: LevelUp | None = None
    follow_up_ids: tuple[int, ...] = ()
    kind: str = ""
    error: str | None = None  # why it failed or was cancelled
    held_elsewhere: bool = False  # another live process runs it: left alone


@dataclass(frozen=True)
class Recovered:
    """What ``recover`` did at start with the items a crash left running."""

    retried: list[int]  # back in the queue
    failed: list[Settled]  # failed and refunded


@dataclass(frozen=True)
class PendingItem:
    id: int
    kind: str
    redeem_key: str | None
    user_id: int | None
    cost: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Settle:
    item_id: int
    status: Outcome
    error: str | None
    result: dict[str, Any] | None = None
    payouts: Sequence[Payout] = ()
    follow_ups: Sequence[FollowUp] = ()
    actor: str | None = None  # who cancelled it (a moderator), for the event log
    only_if_pending: bool = False  # leave it alone if a worker has started it meanwhile
    # The process settling it: an item another process runs under a live lease is left alone.
    # None: settle whoever holds it (recovery at the start of a single-process database).
    holder: str | None = None

    def needs(self, needs: Needs) -> None:
        needs.settle_items.add(self.item_id)
        needs.user_ids.update(payout.user_id for payout in self.payouts)
        needs.queue_items += len(self.follow_ups)

    def _held_elsewhere(self, batch: Batch) -> bool:
        item = batch.open_items.get(self.item_id)
        return (
            self.holder is not None
            and item is not None
            and item.status == "running"
            and item.lease_owner not in (None, self.holder)
            and item.lease_expires_at is not None
            and item.lease_expires_at > batch.now
        )

    def apply(self, batch: Batch) -> Settled:
        if self._held_elsewhere(batch):
            return Settled(self.item_id, self.status, already_settled=True, held_elsewhere=True)
        item = batch.settle(
            self.item_id, self.status, self.error, self.result, only_if_pending=self.only_if_pending
        )
        if item is None:
            return Settled(self.item_id, self.status, already_settled=True)
        refunded, balance = 0, None
        if self.status != "done" and item.charge_ref is not None:
            charge = batch.charges[item.charge_ref]
            balance = batch.refund(
                item.charge_ref, reason=f"{self.status}:{item.kind}", actor=self.actor
            )
            refunded = -charge.amount if balance is not None else 0
        batch.log(
            f"queue_{self.status}",
            user_id=item.user_id,
            cause_ref=item.charge_ref,
            payload={
                "item": item.id,
                "kind": item.kind,
                "error": self.error,
                "refund": refunded,
                "result": self.result,
                "by": self.actor,
            },
        )
        paid = _Paid()
        if self.status == "done":
            for index, payout in enumerate(self.payouts):
                paid.add(batch, payout, ref=f"queue:{item.id}:prize:{index}")
            for follow_up in self.follow_ups:
                paid.follow_up_ids.append(_enqueue_follow_up(batch, item.user_id, follow_up))
        return Settled(
            item.id,
            self.status,
            False,
            refunded,
            balance,
            item.payload,
            item.user_id,
            paid.points,
            paid.xp,
            paid.level_up,
            tuple(paid.follow_up_ids),
            item.kind,
            self.error,
        )


@dataclass
class _Paid:
    points: int = 0
    xp: int = 0
    level_up: LevelUp | None = None
    follow_up_ids: list[int] = field(default_factory=list)

    def add(self, batch: Batch, payout: Payout, *, ref: str) -> None:
        account = batch.account(payout.user_id)
        if payout.points > 0:
            # A prize never fails the spin: a full wallet takes what fits under the maximum.
            self.points += batch.credit_up_to_limit(
                account, payout.points, kind=GRANT, reason=payout.reason, ref=ref
            )
        if payout.xp > 0:
            self.xp += payout.xp
            self.level_up = (
                batch.add_xp(account, payout.xp, reason=payout.reason, ref=ref) or self.level_up
            )


def _enqueue_follow_up(batch: Batch, user_id: int | None, follow_up: FollowUp) -> int:
    return batch.enqueue(
        {
            "kind": follow_up.kind,
            "status": "pending",
            "priority": 0,
            "payload": follow_up.payload,
            "user_id": user_id,
            "redeem_key": None,
            "cost": 0,
            "charge_ref": None,
            "stream_session_id": None,
            "attempts": 0,
            "error": None,
            "result": None,
            "started_at": None,
            "finished_at": None,
        }
    )


@dataclass(frozen=True)
class _Claim(RowsOperation[ClaimedItem | None]):
    """The next pending item of ``kind`` marked running, under this process's lease (a
    ``RowsOperation``: on the writer's connection, so the writer's cache stays valid)."""

    kind: str
    owner: str
    lease: timedelta

    def write_rows(self, conn: Connection, db: Database, now: datetime) -> ClaimedItem | None:
        next_id = (
            select(QUEUE_ITEMS.c.id)
            .where(QUEUE_ITEMS.c.kind == self.kind, QUEUE_ITEMS.c.status == "pending")
            .order_by(QUEUE_ITEMS.c.priority.desc(), QUEUE_ITEMS.c.id)
            .limit(1)
            # Another process claiming at this instant holds its row locked: take the next
            # one instead of queueing behind it (PostgreSQL; SQLite's write lock serializes).
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(QUEUE_ITEMS)
            .where(QUEUE_ITEMS.c.id == next_id, QUEUE_ITEMS.c.status == "pending")
            .values(
                status="running",
                started_at=now,
                attempts=QUEUE_ITEMS.c.attempts + 1,
                lease_owner=self.owner,
                lease_expires_at=now + self.lease,
            )
            .returning(
                QUEUE_ITEMS.c.id,
                QUEUE_ITEMS.c.kind,
                QUEUE_ITEMS.c.payload,
                QUEUE_ITEMS.c.user_id,
                QUEUE_ITEMS.c.charge_ref,
                QUEUE_ITEMS.c.attempts,
            )
        )
        row = conn.execute(statement).first()
        return None if row is None else ClaimedItem(*row)


@dataclass(frozen=True)
class _Renew(RowsOperation[None]):
    """The leases ``owner`` holds on ``item_ids`` extended (a ``RowsOperation``)."""

    item_ids: tuple[int, ...]
    owner: str
    lease: timedelta

    def write_rows(self, conn: Connection, db: Database, now: datetime) -> None:
        conn.execute(
            update(QUEUE_ITEMS)
            .where(
                QUEUE_ITEMS.c.id.in_(self.item_ids),
                QUEUE_ITEMS.c.status == "running",
                QUEUE_ITEMS.c.lease_owner == self.owner,
            )
            .values(lease_expires_at=now + self.lease)
        )


class QueueStore:
    def __init__(
        self,
        writer: Writer,
        db: Database,
        clock: Clock,
        *,
        owner: str | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self._writer = writer
        self._db = db
        self._clock = clock
        self.owner = owner or process_owner()
        self.lease = lease

    @property
    def shared(self) -> bool:
        """Whether other bot processes may be working this queue too (see Database.shared)."""
        return self._db.shared

    async def claim(self, kind: str) -> ClaimedItem | None:
        """Mark the next pending item of ``kind`` (priority, then age) running and return it.

        ``WriterStopped`` once the writer stops, on every backend: an item claimed then could
        be performed but neither finished nor refunded until the next start, which would
        perform it again or refund what was played. (On a SQLite file the writer refuses the
        claim itself; on a shared database the claim does not go through the writer.)"""
        if not self._writer.accepting:
            raise WriterStopped("the economy writer is not running: no item is claimed")
        return await self._write_rows(_Claim(kind, self.owner, self.lease))

    async def _write_rows(self, op: RowsOperation[T]) -> T:
        """A claim or a lease renewal. On a SQLite file, on the writer's connection in its turn
        (so that the writer's cache stays valid: ``RowsOperation``). On a database other bots
        share there is no such cache (``cache.py``), and a renewal must not wait behind the
        writer's batches: one waiting on a wallet another process holds locked would hold the
        lease back until it ran out, and another bot's recovery would take over (refund) an
        item this one is still performing. There it runs in a transaction of its own."""
        if not self._db.shared:
            return await self._writer.submit(op)
        async with self._db.write() as conn:
            return await conn.run_sync(op.write_rows, self._db, self._clock.now())

    async def finish(
        self,
        item_id: int,
        result: dict[str, Any] | None = None,
        payouts: Sequence[Payout] = (),
        follow_ups: Sequence[FollowUp] = (),
    ) -> Settled:
        """Mark the item done, recording ``result``; pay its prizes and enqueue its follow-ups
        in the same transaction."""
        return await self._writer.submit(
            _Settle(
                item_id,
                "done",
                None,
                result,
                tuple(payouts),
                tuple(follow_ups),
                holder=self.owner,
            )
        )

    async def fail(self, item_id: int, error: str) -> Settled:
        """The item could not be performed: mark it failed and refund its charge, once."""
        return await self._writer.submit(_Settle(item_id, "failed", error, holder=self.owner))

    async def cancel(
        self, item_id: int, reason: str, *, actor: str | None = None, only_if_pending: bool = False
    ) -> Settled:
        """A moderator (or a rule) called it off: mark it cancelled and refund, once.
        ``only_if_pending``: an item a worker has started meanwhile is left alone (it comes
        back ``already_settled``); stopping that one is the runner's ``skip``."""
        return await self._writer.submit(
            _Settle(
                item_id,
                "cancelled",
                reason,
                actor=actor,
                only_if_pending=only_if_pending,
                holder=self.owner,
            )
        )

    async def note_on_item(self, item_id: int, **facts: object) -> None:
        """Add facts to a settled item's recorded ``result`` (how a platform's own reward
        for it was settled, say), keeping what was recorded before."""
        async with self._db.write() as conn:
            current = (
                await conn.execute(select(QUEUE_ITEMS.c.result).where(QUEUE_ITEMS.c.id == item_id))
            ).scalar_one_or_none()
            merged = {**(current if isinstance(current, dict) else {}), **facts}
            await conn.execute(
                update(QUEUE_ITEMS).where(QUEUE_ITEMS.c.id == item_id).values(result=merged)
            )

    async def pending(
        self, kind: str | None = None, *, user_id: int | None = None
    ) -> list[PendingItem]:
        """Items still waiting, in the order they will run (priority, then age)."""
        query = select(
            QUEUE_ITEMS.c.id,
            QUEUE_ITEMS.c.kind,
            QUEUE_ITEMS.c.redeem_key,
            QUEUE_ITEMS.c.user_id,
            QUEUE_ITEMS.c.cost,
            QUEUE_ITEMS.c.payload,
        ).where(QUEUE_ITEMS.c.status == "pending")
        if kind is not None:
            query = query.where(QUEUE_ITEMS.c.kind == kind)
        if user_id is not None:  # the wallet's items, and those of wallets joined into it
            joined = select(USERS.c.id).where(USERS.c.merged_into == user_id)
            query = query.where(
                or_(QUEUE_ITEMS.c.user_id == user_id, QUEUE_ITEMS.c.user_id.in_(joined))
            )
        async with self._db.read() as conn:
            rows = await conn.execute(
                query.order_by(QUEUE_ITEMS.c.priority.desc(), QUEUE_ITEMS.c.id)
            )
            return [PendingItem(*row) for row in rows]

    async def paused_kinds(self) -> set[str]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(QUEUE_CONTROLS.c.kind).where(QUEUE_CONTROLS.c.paused.is_(True))
            )
            return set(rows.scalars())

    async def set_paused(self, kind: str, paused: bool, *, by: str | None = None) -> None:
        """A moderator's pause or resume of one kind; stored, so it survives a restart."""
        async with self._db.write() as conn:
            await conn.execute(
                self._db.upsert(QUEUE_CONTROLS, ["kind"], ["paused", "updated_by", "updated_at"]),
                [
                    {
                        "kind": kind,
                        "paused": paused,
                        "updated_by": by,
                        "updated_at": self._clock.now(),
                    }
                ],
            )

    async def heartbeat(self, item_ids: Sequence[int]) -> None:
        """Renew the leases this process holds on ``item_ids`` (it is still running them)."""
        if item_ids:
            await self._write_rows(_Renew(tuple(item_ids), self.owner, self.lease))

    async def recover(self, *, retry: bool, at_start: bool = True) -> Recovered:
        """Items left ``running`` by a process that is gone go back to pending (``retry``),
        unless they have been tried ``MAX_ATTEMPTS`` times already (an item that kills the bot
        must not crash-loop it); the others are failed and refunded.

        Gone means: its lease ran out, or, at the start of a bot on a database nobody else
        shares (a SQLite file), anything running at all. Items this process holds are never
        taken: on a shared database the runner calls this periodically (``at_start=False``)."""
        now = self._clock.now()
        everything = at_start and not self._db.shared
        orphaned = or_(
            QUEUE_ITEMS.c.lease_expires_at.is_(None), QUEUE_ITEMS.c.lease_expires_at <= now
        )
        condition = [QUEUE_ITEMS.c.status == "running"]
        if not everything:
            condition += [orphaned, QUEUE_ITEMS.c.lease_owner.is_distinct_from(self.owner)]
        async with self._db.read() as conn:
            stuck = list(
                await conn.execute(
                    select(QUEUE_ITEMS.c.id, QUEUE_ITEMS.c.attempts)
                    .where(*condition)
                    .order_by(QUEUE_ITEMS.c.id)
                )
            )
        again = [item_id for item_id, attempts in stuck if retry and attempts < MAX_ATTEMPTS]
        retried: list[int] = []
        if again:
            async with self._db.write() as conn:
                result = await conn.execute(
                    update(QUEUE_ITEMS)
                    .where(QUEUE_ITEMS.c.id.in_(again), *condition)
                    .values(
                        status="pending", started_at=None, lease_owner=None, lease_expires_at=None
                    )
                    .returning(QUEUE_ITEMS.c.id)
                )
                retried = sorted(result.scalars())
        failed = []
        holder = None if everything else self.owner
        for item_id, attempts in stuck:
            if item_id not in again:
                reason = INTERRUPTED if attempts < MAX_ATTEMPTS else GAVE_UP.format(attempts)
                settled = await self._writer.submit(
                    _Settle(item_id, "failed", reason, holder=holder)
                )
                if not settled.already_settled:
                    failed.append(settled)
        return Recovered(retried, failed)

    async def release(self, item_id: int) -> None:
        """Put a claimed item that never started back in the queue (the bot is stopping)."""
        async with self._db.write() as conn:
            await conn.execute(
                update(QUEUE_ITEMS)
                .where(QUEUE_ITEMS.c.id == item_id, QUEUE_ITEMS.c.status == "running")
                .values(
                    status="pending",
                    started_at=None,
                    attempts=QUEUE_ITEMS.c.attempts - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
