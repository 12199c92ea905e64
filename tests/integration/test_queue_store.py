"""The durable queue's state changes: claim order, settle once, refund once, crash recovery."""

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pixelbot.clock import FakeClock
from pixelbot.db.models import QueueItem, Transaction
from pixelbot.db.verify import verify
from pixelbot.economy.queue import LEASE, QueueStore
from pixelbot.events import Viewer
from pixelbot.testing import make_config, open_test_engine, redeem_item, viewer

ALICE = viewer("alice")
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
    "spin": {"title": "Wheel", "cost": 100, "action": {"type": "wheel"}},
    "free": {"title": "Free", "cost": 0, "action": {"type": "chat", "message": "hi"}},
}


async def buy(engine: Any, key: str, ref: str, who: Viewer = ALICE, text: str = "hi") -> int:
    return await redeem_item(engine, key, ref, who, text)


async def statuses(engine: Any) -> dict[int, str]:
    async with engine.db.read() as conn:
        rows = await conn.execute(select(QueueItem.id, QueueItem.status).order_by(QueueItem.id))
        return {item_id: status for item_id, status in rows}


async def refunds(engine: Any) -> list[tuple[int, str | None]]:
    async with engine.db.read() as conn:
        rows = await conn.execute(
            select(Transaction.amount, Transaction.refund_of).where(Transaction.kind == "refund")
        )
        return [tuple(row) for row in rows]


async def balance(engine: Any) -> int:
    summary = await engine.wallets.summary(await engine.wallets.find("alice", "twitch"))
    return int(summary.points)


async def test_claims_go_by_kind_priority_and_age_and_never_twice(
    db_path: Path, clock: FakeClock
) -> None:
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), clock) as engine:
        await engine.ledger.grant(ALICE, 1000, reason="test")
        first = await buy(engine, "tts", "r1")
        await buy(engine, "spin", "r2")
        second = await buy(engine, "tts", "r3")
        claimed = await asyncio.gather(*(engine.queue.claim("tts") for _ in range(3)))
        ids = sorted(item.id for item in claimed if item is not None)
        assert ids == [first, second]
        assert claimed.count(None) == 1
        item = next(c for c in claimed if c is not None and c.id == first)
        assert (item.kind, item.attempts, item.charge_ref) == ("tts", 1, "r1")
        assert item.payload["text"] == "hi"
        assert (await statuses(engine))[first] == "running"


async def test_a_failed_item_is_refunded_exactly_once(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item_id = await buy(engine, "tts", "r1")
        assert await balance(engine) == 75
        claimed = await engine.queue.claim("tts")
        assert claimed is not None
        results = await asyncio.gather(
            engine.queue.fail(item_id, "speech engine crashed"),
            engine.queue.fail(item_id, "speech engine crashed"),
            engine.queue.cancel(item_id, "moderator skipped it"),
        )
        assert [r.already_settled for r in results] == [False, True, True]
        assert (results[0].refunded, results[0].balance) == (25, 100)
        assert await balance(engine) == 100
        assert await refunds(engine) == [(25, "r1")]
        assert (await statuses(engine))[item_id] == "failed"
        assert (await verify(engine.db)).ok


async def test_done_items_keep_their_charge(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item_id = await buy(engine, "tts", "r1")
        await engine.queue.claim("tts")
        done = await engine.queue.finish(item_id)
        assert (done.status, done.refunded) == ("done", 0)
        later = await engine.queue.cancel(item_id, "too late")
        assert later.already_settled
        assert await balance(engine) == 75
        assert await refunds(engine) == []


async def test_cancelling_a_pending_or_free_item(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        paid = await buy(engine, "spin", "r1")
        free = await buy(engine, "free", "r2")
        assert (await engine.queue.cancel(paid, "queue cleared")).refunded == 100
        assert (await engine.queue.cancel(free, "queue cleared")).refunded == 0
        assert await statuses(engine) == {paid: "cancelled", free: "cancelled"}
        assert await balance(engine) == 100
        assert (await verify(engine.db)).ok


async def test_recovery_after_a_crash_retries_or_refunds(db_path: Path, clock: FakeClock) -> None:
    config = make_config(db_path, redeems=REDEEMS)
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        retried = await buy(engine, "tts", "r1")
        await engine.queue.claim("tts")  # the bot "dies" with this item running
    clock.advance(LEASE)  # ... and its lease runs out (a shared database waits for that)
    async with open_test_engine(config, clock) as engine:
        recovered = await engine.queue.recover(retry=True)
        assert (recovered.retried, recovered.failed) == ([retried], [])
        assert (await statuses(engine))[retried] == "pending"
        again = await engine.queue.claim("tts")
        assert again is not None and again.attempts == 2
    clock.advance(LEASE)
    async with open_test_engine(config, clock) as engine:
        recovered = await engine.queue.recover(retry=False)
        assert recovered.retried == []
        assert [(s.item_id, s.refunded, s.error) for s in recovered.failed] == [
            (retried, 25, "the bot stopped while it was running")
        ]
        assert (await statuses(engine))[retried] == "failed"
        assert await refunds(engine) == [(25, "r1")]
        nothing = await engine.queue.recover(retry=False)
        assert (nothing.retried, nothing.failed) == ([], [])
        assert await balance(engine) == 100
        assert (await verify(engine.db)).ok


async def test_an_item_under_another_processs_live_lease_is_left_alone(
    db_path: Path, clock: FakeClock
) -> None:
    """Two bots on one database (two queue stores, two owners): the other one can neither
    settle nor recover an item while its holder's lease runs; once the lease ran out (the
    holder died), its recovery refunds it, exactly once."""
    config = make_config(db_path, redeems=REDEEMS)
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(engine, "tts", "r1")
        claimed = await engine.queue.claim("tts")
        assert claimed is not None and claimed.id == item
        other = QueueStore(engine.writer, engine.db, clock, owner="another-bot")
        refused = await other.fail(item, "not yours")
        assert (refused.already_settled, refused.held_elsewhere) == (True, True)
        clock.advance(LEASE / 2)
        await engine.queue.heartbeat([item])  # the holder is alive and renews
        clock.advance(LEASE / 2)
        nothing = await other.recover(retry=False, at_start=False)
        assert (nothing.retried, nothing.failed) == ([], [])
        assert (await statuses(engine))[item] == "running"
        clock.advance(LEASE)  # no heartbeat any more: the holder is gone
        taken = await other.recover(retry=False, at_start=False)
        assert [(s.item_id, s.refunded) for s in taken.failed] == [(item, 25)]
        assert (await other.recover(retry=False, at_start=False)).failed == []
        assert (await statuses(engine))[item] == "failed"
        assert await balance(engine) == 100
        assert (await verify(engine.db)).ok
