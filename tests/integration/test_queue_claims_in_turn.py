"""Queue claims and lease renewals beside the economy writer (``QueueStore.claim`` and
``heartbeat``): a claim nobody waits for any more claims nothing, and on a database several
bots share, renewing a lease never waits behind the writer's batches.

Real writer, real SQLite file and real PostgreSQL; a second ``QueueStore`` with another owner
stands for a second bot process on the same queue (``test_processes.py`` runs real ones).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.clock import FakeClock
from pixelbot.db.engine import Database
from pixelbot.db.models import QueueItem
from pixelbot.economy.queue import LEASE, QueueStore
from pixelbot.economy.writer import SetBasedOperation
from pixelbot.testing import (
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
    redeem_item,
    viewer,
)

ALICE = viewer("alice")
BOB = viewer("bob")
REDEEMS: dict[str, Any] = {"tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}}}


async def buy(engine: Any, ref: str, who: Any = ALICE) -> int:
    return await redeem_item(engine, "tts", ref, who)


async def status_of(engine: Any, item_id: int) -> str:
    async with engine.db.read() as conn:
        found = await conn.execute(select(QueueItem.status).where(QueueItem.id == item_id))
        return str(found.scalar_one())


class _Hold(SetBasedOperation[None]):
    """A writer operation (set-based, run alone) that keeps the writer busy until released:
    whatever is queued behind it waits its turn."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, conn: AsyncConnection, db: Database, now: Any) -> None:
        self.started.set()
        await self.release.wait()


@pytest.mark.sqlite_only("on a server database a claim does not wait for the writer's turn")
async def test_a_claim_whose_caller_is_gone_before_its_turn_claims_nothing(
    db_path: Path, clock: FakeClock
) -> None:
    """A queue loop stopped (cancelled) while its claim waits behind the writer's backlog: the
    claim must not run later, or the item would be left running with nobody performing it,
    under this process's own lease (no recovery of this process takes it) until a restart."""
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(engine, "r1")
        hold = _Hold()
        held = engine.writer.enqueue(hold)
        await asyncio.wait_for(hold.started.wait(), 5)
        claim = asyncio.ensure_future(engine.queue.claim("tts"))
        await asyncio.sleep(0.05)  # queued behind the hold
        claim.cancel()
        hold.release.set()
        await asyncio.wait_for(held, 5)
        await engine.ledger.grant(BOB, 1, reason="after")  # the writer has passed the claim
        assert await status_of(engine, item) == "pending"
        again = await engine.queue.claim("tts")  # the next loop gets it
        assert again is not None and (again.id, again.attempts) == (item, 1)
        await assert_verified(engine)


@pytest.mark.postgresql_only("leases matter where several bots share a queue: a server database")
async def test_a_lease_renewal_does_not_wait_behind_a_writer_batch(
    db_path: Path, clock: FakeClock
) -> None:
    """Another connection holds a wallet's row lock (another bot's batch, an operator's
    transaction); this bot's writer waits on it with a batch. The item this bot is running
    must keep its lease meanwhile: a renewal touches only the queue. Otherwise a second bot's
    recovery takes the item over (refunds it here) while it is still being performed."""
    config = make_config(db_path, redeems=REDEEMS)
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(engine, "r1")
        claimed = await engine.queue.claim("tts")
        assert claimed is not None and claimed.id == item
        other_bot = QueueStore(engine.writer, engine.db, clock, owner="another-bot")
        alice = await engine.wallets.find_identity(ALICE)
        async with engine.db.connect() as blocker:
            await blocker.begin()
            await blocker.execute(
                text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": alice}
            )
            stuck = asyncio.ensure_future(engine.ledger.grant(ALICE, 1, reason="stuck"))
            await asyncio.sleep(0.3)  # the writer's batch waits for alice's row
            assert not stuck.done()
            clock.advance(LEASE * 2 / 3)
            renewal = asyncio.ensure_future(engine.queue.heartbeat([item]))
            try:
                await asyncio.wait_for(asyncio.shield(renewal), 5)
                clock.advance(LEASE * 2 / 3)  # past the first lease, within the renewed one
                taken = await other_bot.recover(retry=False, at_start=False)
                assert (taken.retried, taken.failed) == ([], [])
                assert await status_of(engine, item) == "running"
            finally:
                await blocker.rollback()
        await asyncio.wait_for(stuck, 10)
        await asyncio.wait_for(renewal, 10)
        done = await engine.queue.finish(item, {"spoken": True})
        assert (done.status, done.already_settled) == ("done", False)
        assert await balance_of(engine, ALICE) == engine.config.economy.starting_points + 76
        await assert_verified(engine)
