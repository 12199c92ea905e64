"""The durable queue's state changes: claim the next item, settle it as done, failed or
cancelled, recover what a crash left running, and the moderators' pauses.

A failed or cancelled item is refunded in the same transaction that settles it, exactly once:
settling only applies to an item that is still pending or running, and the refund is a ledger
row naming the charge (``UNIQUE(refund_of)``). Settling the same item twice changes nothing the
second time. A done item's prizes (points, XP) and follow-up items (a wheel's effect) are
committed in the same transaction that marks it done, so a crash can never pay a prize twice
or lose it. The runner (``pixelbot/queue/runner.py``) sits above this and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, update

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.batch import GRANT, Batch, LevelUp, Needs
from pixelbot.economy.writer import Writer

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
Outcome = Literal["done", "failed", "cancelled"]
INTERRUPTED = "the bot stopped while it was running"
GAVE_UP = "the bot stopped while it was running, {} times; it is not tried again"
MAX_ATTEMPTS = 3  # an item is run at most this often (crash recovery retries it)


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

    def needs(self, needs: Needs) -> None:
        needs.settle_items.add(self.item_id)
        needs.user_ids.update(payout.user_id for payout in self.payouts)
        needs.queue_items += len(self.follow_ups)

    def apply(self, batch: Batch) -> Settled:
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


class QueueStore:
    def __init__(self, writer: Writer, db: Database, clock: Clock) -> None:
        self._writer = writer
        self._db = db
        self._clock = clock

    async def claim(self, kind: str) -> ClaimedItem | None:
        """Mark the next pending item of ``kind`` (priority, then age) running and return it."""
        next_id = (
            select(QUEUE_ITEMS.c.id)
            .where(QUEUE_ITEMS.c.kind == kind, QUEUE_ITEMS.c.status == "pending")
            .order_by(QUEUE_ITEMS.c.priority.desc(), QUEUE_ITEMS.c.id)
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            update(QUEUE_ITEMS)
            .where(QUEUE_ITEMS.c.id == next_id, QUEUE_ITEMS.c.status == "pending")
            .values(
                status="running",
                started_at=self._clock.now(),
                attempts=QUEUE_ITEMS.c.attempts + 1,
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
        async with self._db.write() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else ClaimedItem(*row)

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
            _Settle(item_id, "done", None, result, tuple(payouts), tuple(follow_ups))
        )

    async def fail(self, item_id: int, error: str) -> Settled:
        """The item could not be performed: mark it failed and refund its charge, once."""
        return await self._writer.submit(_Settle(item_id, "failed", error))

    async def cancel(
        self, item_id: int, reason: str, *, actor: str | None = None, only_if_pending: bool = False
    ) -> Settled:
        """A moderator (or a rule) called it off: mark it cancelled and refund, once.
        ``only_if_pending``: an item a worker has started meanwhile is left alone (it comes
        back ``already_settled``); stopping that one is the runner's ``skip``."""
        return await self._writer.submit(
            _Settle(item_id, "cancelled", reason, actor=actor, only_if_pending=only_if_pending)
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
        if user_id is not None:
            query = query.where(QUEUE_ITEMS.c.user_id == user_id)
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

    async def recover(self, *, retry: bool) -> Recovered:
        """At start: items a crash left ``running`` go back to pending (``retry``), unless
        they have been tried ``MAX_ATTEMPTS`` times already (an item that kills the bot must
        not crash-loop it); the others are failed and refunded."""
        async with self._db.read() as conn:
            stuck = list(
                await conn.execute(
                    select(QUEUE_ITEMS.c.id, QUEUE_ITEMS.c.attempts)
                    .where(QUEUE_ITEMS.c.status == "running")
                    .order_by(QUEUE_ITEMS.c.id)
                )
            )
        again = [item_id for item_id, attempts in stuck if retry and attempts < MAX_ATTEMPTS]
        if again:
            async with self._db.write() as conn:
                await conn.execute(
                    update(QUEUE_ITEMS)
                    .where(QUEUE_ITEMS.c.id.in_(again), QUEUE_ITEMS.c.status == "running")
                    .values(status="pending", started_at=None)
                )
        failed = []
        for item_id, attempts in stuck:
            if item_id not in again:
                reason = INTERRUPTED if attempts < MAX_ATTEMPTS else GAVE_UP.format(attempts)
                failed.append(await self.fail(item_id, reason))
        return Recovered(again, failed)

    async def release(self, item_id: int) -> None:
        """Put a claimed item that never started back in the queue (the bot is stopping)."""
        async with self._db.write() as conn:
            await conn.execute(
                update(QUEUE_ITEMS)
                .where(QUEUE_ITEMS.c.id == item_id, QUEUE_ITEMS.c.status == "running")
                .values(status="pending", started_at=None, attempts=QUEUE_ITEMS.c.attempts - 1)
            )
