"""The writer's cache of identities, wallets and cooldowns, on real SQLite files.

The cache is a speed-up that must never be visible: whatever another process writes between two
batches is seen by the next one, a rename through a cached identity lands, a poisoned batch
leaves no stale balance, and a cache far too small for the chat still counts every point.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from pixelbot.app import Engine
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.economy.cache import WriterCache
from pixelbot.errors import InsufficientFunds, OnCooldown
from pixelbot.testing import (
    EventFactory,
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
    stored_names,
    viewer,
)

pytestmark = pytest.mark.sqlite_only(
    "the writer's cache exists only on SQLite (PRAGMA data_version tells it about other "
    "writers); on PostgreSQL there is no cache to test"
)

ALICE = viewer("alice")
BOB = viewer("bob")


@pytest.fixture
async def other(config: Config, clock: FakeClock) -> AsyncIterator[Engine]:
    """A second bot process on the same database file (its own engine and connections)."""
    async with open_test_engine(config, clock) as engine:
        yield engine


class Statements:
    """The SQL the engine's connections run, to tell what a batch read from the database."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        self._targets = engine.db.statement_engines()
        for target in self._targets:
            event.listen(target, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def reads_of(self, table: str) -> list[str]:
        return [s for s in self.seen if s.startswith("SELECT") and f"FROM {table} " in f"{s} "]

    def close(self) -> None:
        for target in self._targets:
            event.remove(target, "before_cursor_execute", self._record)


@pytest.fixture
def statements(engine: Engine) -> Iterator[Statements]:
    recorder = Statements(engine)
    yield recorder
    recorder.close()


# -------------------------------------------------------------------- the cache is used at all


async def test_a_regulars_next_batch_reads_no_identity_wallet_or_cooldown(
    engine: Engine, statements: Statements
) -> None:
    await engine.ledger.grant(ALICE, 10, reason="test")
    await engine.cooldowns.check((ALICE, "earn:chat"))
    statements.seen.clear()

    await engine.ledger.grant(ALICE, 5, reason="test")
    await engine.cooldowns.check((ALICE, "earn:chat"))

    assert statements.reads_of("identities") == []
    assert statements.reads_of("users") == []
    assert statements.reads_of("cooldowns") == []
    assert await balance_of(engine, ALICE) == 15


async def test_a_new_viewer_is_still_read_and_created(
    engine: Engine, statements: Statements
) -> None:
    await engine.ledger.grant(ALICE, 10, reason="test")
    statements.seen.clear()
    await engine.ledger.grant(BOB, 7, reason="test")
    assert len(statements.reads_of("identities")) == 1
    assert await balance_of(engine, BOB) == 7


# --------------------------------------------------------- nobody else's write is ever missed


async def test_points_granted_by_another_process_are_spendable(
    engine: Engine, other: Engine
) -> None:
    await engine.ledger.grant(ALICE, 100, reason="test")  # alice's wallet is now cached
    await other.ledger.grant(ALICE, 50, reason="test")

    spent = await engine.ledger.spend(ALICE, 140, reason="tts")

    assert spent.balance == 10
    assert await balance_of(engine, ALICE) == 10
    await assert_verified(engine)


async def test_points_spent_by_another_process_cannot_be_spent_again(
    engine: Engine, other: Engine
) -> None:
    await engine.ledger.grant(ALICE, 100, reason="test")
    await other.ledger.spend(ALICE, 80, reason="tts")

    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.spend(ALICE, 50, reason="tts")

    assert (refused.value.balance, refused.value.cost) == (20, 50)
    await assert_verified(engine)


async def test_a_cooldown_started_by_another_process_holds(engine: Engine, other: Engine) -> None:
    await engine.cooldowns.check((ALICE, "dance"), (None, "hype"))  # both known: not running
    await other.cooldowns.reserve((ALICE, "dance", timedelta(minutes=1)))
    await other.cooldowns.reserve((None, "hype", timedelta(minutes=5)))

    with pytest.raises(OnCooldown) as per_viewer:
        await engine.cooldowns.check((ALICE, "dance"))
    with pytest.raises(OnCooldown) as global_one:
        await engine.cooldowns.check((None, "hype"))

    assert (per_viewer.value.key, per_viewer.value.remaining) == ("dance", 60.0)
    assert (global_one.value.key, global_one.value.remaining) == ("hype", 300.0)


async def test_a_cooldown_started_here_holds_from_the_cache(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.cooldowns.reserve((ALICE, "dance", timedelta(minutes=1)))
    clock.advance(timedelta(seconds=45))
    with pytest.raises(OnCooldown) as refused:
        await engine.cooldowns.reserve((ALICE, "dance", timedelta(minutes=1)))
    assert refused.value.remaining == 15.0
    clock.advance(timedelta(seconds=15))
    await engine.cooldowns.reserve((ALICE, "dance", timedelta(minutes=1)))  # expired: runs again


async def test_a_write_by_a_plain_sqlite_connection_is_seen(engine: Engine, db_path: Path) -> None:
    """An operator's own tool on the file, outside the bot entirely."""
    entry = await engine.ledger.grant(ALICE, 100, reason="test")
    with sqlite3.connect(db_path) as conn:  # a new display name, written behind the bot's back
        conn.execute("UPDATE users SET display_name = 'Renamed' WHERE id = ?", (entry.user_id,))

    await engine.ledger.grant(ALICE, 1, reason="test")  # a batch that reloads alice

    assert engine.writer.cache.accounts[entry.user_id][0] == "Renamed"


# ---------------------------------------------------------------------------------- renames


async def test_a_rename_of_a_cached_viewer_is_written_and_remembered(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 10, reason="test")
    renamed = viewer("alice_2", user_id=ALICE.platform_user_id, display_name="Alice_2")

    await engine.ledger.grant(renamed, 5, reason="test")
    assert await stored_names(engine, ALICE.platform_user_id) == ("alice_2", "Alice_2", "Alice_2")

    await engine.ledger.grant(ALICE, 1, reason="test")  # and back: the cache saw the first one
    assert await stored_names(engine, ALICE.platform_user_id) == ("alice", "alice", "alice")
    assert await balance_of(engine, ALICE) == 16


async def test_a_level_up_after_a_rename_names_the_new_name(
    db_path: Path, clock: FakeClock
) -> None:
    config = make_config(db_path, economy={"earn": {"chat": {"xp": 300, "cooldown": "0s"}}})
    events = EventFactory(clock)
    async with open_test_engine(config, clock) as engine:
        await engine.earning.handle(events.chat(ALICE))  # level 2, cached as "alice"
        renamed = viewer("alice_2", user_id=ALICE.platform_user_id, display_name="Alice_2")
        earned = await engine.earning.handle(events.chat(renamed))
    assert earned.level_up is not None
    assert earned.level_up.display_name == "Alice_2"


# ------------------------------------------------------------------- failures and a tiny cache


async def test_a_batch_the_database_refuses_leaves_no_stale_balance(
    engine: Engine, db_path: Path
) -> None:
    await engine.ledger.grant(ALICE, 100, reason="test")
    with sqlite3.connect(db_path) as conn:  # a disk-level refusal of one particular row
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON transactions WHEN NEW.ref = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
        )

    results = await asyncio.gather(
        engine.ledger.grant(ALICE, 10, reason="test", ref="fine"),
        engine.ledger.grant(ALICE, 1000, reason="test", ref="poison"),
        engine.ledger.spend(ALICE, 50, reason="tts", ref="spend"),
        return_exceptions=True,
    )

    assert isinstance(results[1], Exception)
    assert await balance_of(engine, ALICE) == 60
    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.spend(ALICE, 61, reason="tts")
    assert refused.value.balance == 60
    await assert_verified(engine)


async def test_a_cache_far_too_small_for_the_chat_still_counts_every_point(
    engine: Engine,
) -> None:
    engine.writer.cache.limit = 3
    viewers = [viewer(f"viewer{n}") for n in range(12)]
    for round_number in range(4):
        await asyncio.gather(
            *(
                engine.ledger.grant(v, n + 1, reason="test", ref=f"r{round_number}-{n}")
                for n, v in enumerate(viewers)
            )
        )
    assert [await balance_of(engine, v) for v in viewers] == [4 * (n + 1) for n in range(12)]
    assert len(engine.writer.cache.accounts) <= 3 + len(viewers)
    await assert_verified(engine)


async def test_a_cache_that_fails_after_the_commit_never_pays_twice(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is committed before the cache learns of it: a failure there is not a failed
    batch, which would be retried and paid again."""

    def broken(self: WriterCache, needs: Any, batch: Any) -> None:
        raise RuntimeError("cache bug")

    monkeypatch.setattr(WriterCache, "remember", broken)
    entry = await engine.ledger.grant(ALICE, 10, reason="test", ref="once")

    assert entry.balance == 10
    assert await balance_of(engine, ALICE) == 10
    assert engine.writer.cache.accounts == {}
    await assert_verified(engine)
