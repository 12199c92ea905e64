"""The durable queue's state changes: claim the next item, settle it as done, failed or
cancelled, and recover what a crash left running.

A failed or cancelled item is refunded in the same transaction that settles it, exactly once:
settling only applies to an item that is still pending or running, and the refund is a ledger
row naming the charge (``UNIQUE(refund_of)``). Settling the same item twice changes nothing the
second time. Workers (issue 4) sit above this and call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.batch import Batch, Needs
from pixelbot.economy.writer import Writer

__all__ = ["ClaimedItem", "QueueStore", "Settled"]

QUEUE_ITEMS = Base.metadata.tables["queue_items"]
Outcome = Literal["done", "failed", "cancelled"]


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


@dataclass(frozen=True)
class _Settle:
    item_id: int
    status: Outcome
    error: str | None

    def needs(self, needs: Needs) -> None:
        needs.settle_items.add(self.item_id)

    def apply(self, batch: Batch) -> Settled:
        item = batch.settle(self.item_id, self.status, self.error)
        if item is None:
            return Settled(self.item_id, self.status, already_settled=True)
        refunded, balance = 0, None
        if self.status != "done" and item.charge_ref is not None:
            charge = batch.charges[item.charge_ref]
            balance = batch.refund(item.charge_ref, reason=f"{self.status}:{item.kind}")
            refunded = -charge.amount if balance is not None else 0
        batch.log(
            f"queue_{self.status}",
            user_id=item.user_id,
            cause_ref=item.charge_ref,
            payload={"item": item.id, "kind": item.kind, "error": self.error, "refund": refunded},
        )
        return Settled(item.id, self.status, False, refunded, balance, item.payload)


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

    async def finish(self, item_id: int) -> Settled:
        return await self._writer.submit(_Settle(item_id, "done", None))

    async def fail(self, item_id: int, error: str) -> Settled:
        """The item could not be performed: mark it failed and refund its charge, once."""
        return await self._writer.submit(_Settle(item_id, "failed", error))

    async def cancel(self, item_id: int, reason: str) -> Settled:
        """A moderator (or a rule) called it off: mark it cancelled and refund, once."""
        return await self._writer.submit(_Settle(item_id, "cancelled", reason))

    async def recover(self, *, retry: bool) -> list[int]:
        """At start: items a crash left ``running`` go back to pending (``retry``) or are
        failed and refunded. Returns their ids."""
        async with self._db.read() as conn:
            stuck = list(
                (
                    await conn.execute(
                        select(QUEUE_ITEMS.c.id)
                        .where(QUEUE_ITEMS.c.status == "running")
                        .order_by(QUEUE_ITEMS.c.id)
                    )
                ).scalars()
            )
        if retry and stuck:
            async with self._db.write() as conn:
                await conn.execute(
                    update(QUEUE_ITEMS)
                    .where(QUEUE_ITEMS.c.id.in_(stuck), QUEUE_ITEMS.c.status == "running")
                    .values(status="pending", started_at=None)
                )
        elif stuck:
            for item_id in stuck:
                await self.fail(item_id, "interrupted: the bot stopped while this was running")
        return stuck
