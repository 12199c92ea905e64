"""The SQLite write-ahead log stays bounded under a writer that never pauses.

A background checkpoint cannot let the WAL start over while commits keep arriving, so without a
limit the WAL grows for as long as the chat stays busy (454 MB beside a 70 MB database in
scripts/bench.py). Past ``wal_limit_pages`` the committing connection checkpoints itself.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pixelbot.clock import FakeClock
from pixelbot.db import migrate
from pixelbot.db.engine import Database
from pixelbot.db.verify import verify
from pixelbot.economy.batch import Policy
from pixelbot.economy.ledger import Ledger
from pixelbot.economy.writer import Writer
from pixelbot.testing import viewer

pytestmark = pytest.mark.sqlite_only("about SQLite's write-ahead log")

PAGE = 4096


async def busy_chat(db: Database, batches: int) -> int:
    """Commit ``batches`` batches back to back; returns the largest WAL seen after a commit."""
    await migrate.upgrade(db)
    writer = Writer(db, FakeClock(), Policy())
    ledger = Ledger(writer)
    wal = Path(f"{db.sqlite_path}-wal")
    largest = 0
    await writer.start()
    try:
        for number in range(batches):
            await asyncio.gather(
                *(
                    ledger.grant(viewer(f"viewer{n}"), 1, reason="chat", ref=f"{number}-{n}")
                    for n in range(40)
                )
            )
            largest = max(largest, await asyncio.to_thread(os.path.getsize, wal))
    finally:
        await writer.stop()
    return largest


@pytest.mark.parametrize("limit", [50, 200])
async def test_the_wal_stays_near_its_limit_under_a_writer_that_never_pauses(
    tmp_path: Path, limit: int
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}", wal_limit_pages=limit)
    try:
        largest = await busy_chat(db, batches=150)
        assert largest <= (limit + 100) * PAGE  # the limit plus one batch's pages
        assert (await verify(db)).ok
    finally:
        await db.dispose()


async def test_without_the_limit_the_same_chat_grows_the_wal(tmp_path: Path) -> None:
    """The control: what the limit prevents (0 turns automatic checkpoints off)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}", wal_limit_pages=0)
    try:
        largest = await busy_chat(db, batches=150)
        assert largest > 300 * PAGE
    finally:
        await db.dispose()
