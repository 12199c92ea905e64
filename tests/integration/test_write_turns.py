"""Within one bot, SQLite write transactions take turns in the event loop (``write_turn``).

A write transaction that is slow between two awaits (the event loop busy with thousands of chat
lines) must not make the economy writer time out on SQLite's busy handler and fail a batch of
chat lines: the writer waits for its turn instead, however long. Another *program* holding the
lock still meets ``busy_timeout`` (``test_db_faults.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from pixelbot.clock import FakeClock
from pixelbot.testing import balance_of, make_config, open_test_engine, viewer
from pixelbot.testing_db import database_url

pytestmark = pytest.mark.sqlite_only(
    "PostgreSQL locks rows, not the database: there is no file lock to take turns on"
)


async def test_a_slow_write_in_the_same_bot_delays_the_writer_but_never_fails_it(
    db_path: Path, clock: FakeClock
) -> None:
    config = make_config(db_path, database={"url": database_url(db_path), "busy_timeout": "50ms"})
    alice = viewer("alice")
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(alice, 10, reason="seed")
        holding = asyncio.Event()

        async def slow_write() -> None:
            async with engine.db.write() as conn:
                await conn.execute(text("UPDATE users SET updated_at = updated_at"))
                holding.set()
                await asyncio.sleep(0.5)  # ten busy_timeouts with the file's write lock held

        slow = asyncio.create_task(slow_write())
        await holding.wait()
        entry = await engine.ledger.grant(alice, 5, reason="while the other writes")
        assert slow.done()  # it waited for the other transaction, then wrote
        assert entry.balance == 15
        assert await balance_of(engine, alice) == 15
