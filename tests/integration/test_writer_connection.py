"""The economy writer's own connection (``db/writer_connection.py``) and one-trip reads
(``Database.run_read``), on a real SQLite file (a synchronous connection in a thread of its
own) and on PostgreSQL (the same steps through ``run_sync``).

A transaction is all or nothing whichever way its block ends, and the threads the database
starts end with it: a bot that reconnects after a fault must not leak a thread each time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.engine import Database
from pixelbot.economy.store import COOLDOWNS, IDENTITIES
from pixelbot.economy.writer import SetBasedOperation, WriterStopped
from pixelbot.errors import UnknownViewer
from pixelbot.testing import balance_of, open_test_engine, viewer

EXPIRES = utc(2030, 1, 1)


def _add_cooldown(conn: Connection, key: str) -> None:
    conn.execute(insert(COOLDOWNS).values(scope="test", key=key, expires_at=EXPIRES))


def _cooldown_keys(conn: Connection) -> list[str]:
    rows = conn.execute(select(COOLDOWNS.c.key).where(COOLDOWNS.c.scope == "test"))
    return sorted(rows.scalars())


async def _stored_keys(engine: Engine) -> list[str]:
    return await engine.db.run_read(_cooldown_keys)


async def test_commit_after_keeps_every_step(engine: Engine) -> None:
    conn = await engine.db.writer_connection()
    try:
        async with conn.transaction() as transaction:
            await transaction.run(_add_cooldown, "first")
            await transaction.commit_after(_add_cooldown, "second")
    finally:
        await conn.close()
    assert await _stored_keys(engine) == ["first", "second"]


async def test_a_block_that_ends_without_commit_keeps_nothing(engine: Engine) -> None:
    conn = await engine.db.writer_connection()
    try:
        async with conn.transaction() as transaction:
            await transaction.run(_add_cooldown, "left open")
        async with conn.transaction() as transaction:  # the connection goes on
            await transaction.commit_after(_add_cooldown, "after")
    finally:
        await conn.close()
    assert await _stored_keys(engine) == ["after"]


async def test_a_block_that_raises_keeps_nothing(engine: Engine) -> None:
    conn = await engine.db.writer_connection()
    try:
        with pytest.raises(RuntimeError, match="the rules crashed"):
            async with conn.transaction() as transaction:
                await transaction.run(_add_cooldown, "before the crash")
                raise RuntimeError("the rules crashed")
        with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"):
            async with conn.transaction() as transaction:
                await transaction.run(_add_cooldown, "twice")
                await transaction.commit_after(_add_cooldown, "twice")  # the step itself fails
        async with conn.transaction() as transaction:
            await transaction.commit_after(_add_cooldown, "later")
    finally:
        await conn.close()
    assert await _stored_keys(engine) == ["later"]


async def test_a_read_sees_every_commit_the_writer_acknowledged(
    engine: Engine, clock: FakeClock
) -> None:
    """Reads run on connections of their own (reader threads on SQLite): each read is a
    transaction of its own, so it never keeps an old snapshot of the wallets."""
    alice = viewer("alice")
    for amount in (5, 7, 11):
        await engine.ledger.grant(alice, amount, reason="gift", ref=f"gift:{amount}")
        clock.advance(timedelta(seconds=1))
        assert await balance_of(engine, alice) == engine.config.economy.starting_points + sum(
            a for a in (5, 7, 11) if a <= amount
        )


def _database_threads() -> list[str]:
    return [
        thread.name
        for thread in threading.enumerate()
        if thread.name.startswith(("pixelbot-writer", "pixelbot-read"))
    ]


@pytest.mark.sqlite_only("the writer and reader threads exist only for a SQLite file")
async def test_the_database_threads_end_with_the_engine(config: Config, clock: FakeClock) -> None:
    before = _database_threads()
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(viewer("alice"), 5, reason="gift", ref="gift:1")
        assert await balance_of(engine, viewer("alice")) >= 5
        count = await engine.db.run_read(lambda c: c.execute(select(func.count())).scalar())
        assert count == 1
        assert len(_database_threads()) > len(before)
    assert _database_threads() == before


def _orphan_identity(conn: Connection) -> None:
    """A row whose foreign key is checked only at COMMIT: the commit itself fails."""
    conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    conn.execute(
        insert(IDENTITIES).values(
            user_id=999_999,
            platform="test",
            platform_user_id="nobody",
            login="nobody",
            display_name="nobody",
            created_at=EXPIRES,
            updated_at=EXPIRES,
        )
    )


@pytest.mark.sqlite_only(
    "a COMMIT that fails needs a deferred constraint: PostgreSQL's here are not DEFERRABLE"
)
async def test_after_a_commit_that_failed_the_connection_begins_again(engine: Engine) -> None:
    """SQLAlchemy keeps a transaction whose COMMIT failed attached to its connection (and
    the driver may still hold the write lock): it must be rolled back, not left behind."""
    conn = await engine.db.writer_connection()
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            async with conn.transaction() as transaction:
                await transaction.commit_after(_orphan_identity)
        async with conn.transaction() as transaction:
            await transaction.commit_after(_add_cooldown, "after the failed commit")
    finally:
        await conn.close()
    assert await _stored_keys(engine) == ["after the failed commit"]
    async with engine.db.read() as read:
        orphans = select(func.count()).where(IDENTITIES.c.platform == "test")
        assert (await read.execute(orphans)).scalar_one() == 0


@pytest.mark.sqlite_only("holds the SQLite file's write lock from another connection")
async def test_a_shutdown_during_a_batch_finishes_it_and_answers_its_caller(
    config: Config, clock: FakeClock, db_path: Path
) -> None:
    """Cancelled while a batch waits in the database's thread (here for another program's
    write lock), the writer still finishes that batch: its caller hears the real outcome,
    and the writer's thread ends only after it."""
    before = _database_threads()
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(viewer("alice"), 5, reason="gift", ref="gift:1")
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            grant = asyncio.ensure_future(
                engine.ledger.grant(viewer("alice"), 7, reason="gift", ref="gift:2")
            )
            await asyncio.sleep(0.3)  # the batch waits for the lock, in the writer's thread
            stopping = asyncio.ensure_future(engine.writer.stop())
            await asyncio.sleep(0.05)
            stopping.cancel()
            await asyncio.sleep(0.1)
            assert not grant.done()  # the batch is still in hand, not abandoned
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        entry = await asyncio.wait_for(grant, 10)
        assert entry.balance == engine.config.economy.starting_points + 12
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert not any(name.startswith("pixelbot-writer") for name in _database_threads())
        assert await balance_of(engine, viewer("alice")) == entry.balance
    assert _database_threads() == before


@pytest.mark.sqlite_only("holds the SQLite file's write lock from another connection")
async def test_what_waits_behind_the_batch_in_hand_at_a_shutdown_is_told_it_did_not_run(
    config: Config, clock: FakeClock, db_path: Path
) -> None:
    """Cancelled with a batch in hand and more queued behind it: the batch finishes, and each
    operation still queued hears that the writer stopped (nothing of it saved) instead of
    waiting forever; nothing new is taken."""
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(viewer("alice"), 5, reason="gift", ref="gift:1")
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            in_hand = asyncio.ensure_future(
                engine.ledger.grant(viewer("alice"), 7, reason="gift", ref="gift:2")
            )
            await asyncio.sleep(0.3)  # taken, and waiting for the lock in the writer's thread
            queued = asyncio.ensure_future(
                engine.ledger.grant(viewer("bob"), 9, reason="gift", ref="gift:3")
            )
            await asyncio.sleep(0.05)
            stopping = asyncio.ensure_future(engine.writer.stop())
            await asyncio.sleep(0.05)
            stopping.cancel()
            await asyncio.sleep(0.05)
            with pytest.raises(WriterStopped):  # the writer takes nothing new now
                await engine.ledger.grant(viewer("carol"), 1, reason="gift", ref="gift:4")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        entry = await asyncio.wait_for(in_hand, 10)
        assert entry.balance == engine.config.economy.starting_points + 12
        with pytest.raises(WriterStopped):
            await asyncio.wait_for(queued, 10)
        with pytest.raises(asyncio.CancelledError):
            await stopping
        with pytest.raises(UnknownViewer):  # bob's wallet was never written
            await balance_of(engine, viewer("bob"))


class _Hold(SetBasedOperation[None]):
    """A set-based writer operation that keeps the writer busy until released (or cancelled)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, conn: AsyncConnection, db: Database, now: object) -> None:
        self.started.set()
        await self.release.wait()


async def test_a_shutdown_cancelled_twice_still_tells_what_waited_that_it_did_not_run(
    config: Config, clock: FakeClock
) -> None:
    """A second cancel of a shutdown interrupts the operation in hand too (the way out of a
    commit that hangs); what was queued behind it never started, and its callers must hear
    so rather than wait forever."""
    async with open_test_engine(config, clock) as engine:
        hold = _Hold()
        in_hand = engine.writer.enqueue(hold)
        await asyncio.wait_for(hold.started.wait(), 5)
        queued = asyncio.ensure_future(
            engine.ledger.grant(viewer("bob"), 9, reason="gift", ref="gift:1")
        )
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(engine.writer.stop())
        await asyncio.sleep(0.05)
        stopping.cancel()
        await asyncio.sleep(0.05)
        stopping.cancel()  # (a second Ctrl-C, a teardown cancelling every task)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stopping, 5)
        with pytest.raises(WriterStopped):
            await asyncio.wait_for(queued, 5)
        in_hand.cancel()  # (interrupted: nobody can say how it ended)
        with pytest.raises(UnknownViewer):  # bob's wallet was never written
            await balance_of(engine, viewer("bob"))
        await engine.writer.start()  # and it starts again
        entry = await engine.ledger.grant(viewer("bob"), 9, reason="gift", ref="gift:1")
        assert entry.balance == engine.config.economy.starting_points + 9
