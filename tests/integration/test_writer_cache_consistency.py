"""Review of the writer's cache (economy/cache.py) on real SQLite files, real engines, no mocks.

The cache must never make the economy differ from what the database says. The review found
three ways it did, each pinned here: a wall clock stepped back (per-viewer and global cooldowns
cached as over), and in-memory SQLite, where every caller shares the writer's connection so
nobody's writes moved ``data_version``. The other tests pin down tricky cases that turned out
right, and a differential test runs random mixes of operations with and without the cache.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, update

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.models import Cooldown, Transaction, User
from pixelbot.db.verify import verify
from pixelbot.economy.cache import WriterCache
from pixelbot.economy.queue import Payout
from pixelbot.errors import InsufficientFunds, OnCooldown
from pixelbot.events import Viewer
from pixelbot.testing import (
    EventFactory,
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
    redeem_item,
    stored_names,
    viewer,
)

pytestmark = pytest.mark.sqlite_only(
    "the writer's cache exists only on SQLite (PRAGMA data_version tells it about other "
    "writers); on PostgreSQL there is no cache to test"
)

ALICE = viewer("alice")
BOB = viewer("bob")
CAROL = viewer("carol")
T0 = utc(2026, 3, 1, 20, 0, 0)
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
    "free": {"title": "Free", "cost": 0, "action": {"type": "chat", "message": "hi"}},
}


class SteppedClock:
    """A wall clock that an NTP correction can step back (FakeClock only moves forward)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def step(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@asynccontextmanager
async def stepped_engine(config: Config, clock: SteppedClock) -> AsyncIterator[Engine]:
    async with Engine.open(config, clock) as engine:
        yield engine


async def count_rows(engine: Engine, *where: Any) -> int:
    async with engine.db.read() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(Transaction).where(*where))
            ).scalar_one()
        )


async def buy(engine: Engine, key: str, ref: str, who: Viewer = ALICE) -> int:
    return await redeem_item(engine, key, ref, who)


def poison_transactions(db_path: Path, ref: str) -> None:
    """A disk-level refusal of one ledger row, written by a tool outside the bot."""
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            f"CREATE TRIGGER poison BEFORE INSERT ON transactions WHEN NEW.ref = '{ref}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
        )


# ------------------------------------------------------------------ bug: a clock stepped back


async def test_a_clock_stepped_back_still_honours_the_chat_cooldown(db_path: Path) -> None:
    config = make_config(db_path, economy={"earn": {"chat": {"points": 5, "cooldown": "60s"}}})
    clock = SteppedClock(T0)
    events = EventFactory(clock)  # type: ignore[arg-type]  # any Clock stamps events
    async with stepped_engine(config, clock) as engine:
        first = await engine.earning.handle(events.chat(ALICE))  # paid; cooldown until T0+60
        assert first.points == 5 and first.user_id is not None
        clock.step(61)
        await engine.ledger.grant(ALICE, 1, reason="test")  # caches alice's scope as "none"
        clock.step(-31)  # NTP steps the wall clock back to T0+30: the cooldown runs again
        assert await engine.cooldowns.remaining(first.user_id, "earn:chat") == 30.0  # the DB

        again = await engine.earning.handle(events.chat(ALICE))

        assert again.skipped == "cooldown"  # the cache pays 5 more points instead


async def test_a_clock_stepped_back_still_honours_a_global_cooldown(config: Config) -> None:
    clock = SteppedClock(T0)
    async with stepped_engine(config, clock) as engine:
        await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))
        clock.step(301)
        await engine.cooldowns.check((None, "hype"))  # expired: cached as not running
        clock.step(-101)  # back to T0+200
        assert await engine.cooldowns.remaining(None, "hype") == 100.0  # the DB

        with pytest.raises(OnCooldown):
            await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))


async def test_without_the_cache_a_clock_stepped_back_honours_the_cooldown(
    db_path: Path,
) -> None:
    """The control for the two bugs above: the same steps with the cache dropped."""
    config = make_config(db_path, economy={"earn": {"chat": {"points": 5, "cooldown": "60s"}}})
    clock = SteppedClock(T0)
    events = EventFactory(clock)  # type: ignore[arg-type]
    async with stepped_engine(config, clock) as engine:
        await engine.earning.handle(events.chat(ALICE))
        await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))
        clock.step(301)
        await engine.ledger.grant(ALICE, 1, reason="test")
        await engine.cooldowns.check((None, "hype"))
        clock.step(-271)  # T0+30
        engine.writer.cache.clear()

        again = await engine.earning.handle(events.chat(ALICE))
        with pytest.raises(OnCooldown):
            await engine.cooldowns.check((None, "hype"))

    assert again.skipped == "cooldown"


# ------------------------------------------- bug: a writer that shares its SQLite connection


async def test_an_in_memory_database_sees_a_correction_made_through_database_write(
    tmp_path: Path,
) -> None:
    """(In memory on purpose: a file database gives each pooled connection its own handle,
    see test_a_balance_changed_through_database_write_in_this_process_is_spent_right.)"""
    config = make_config(tmp_path / "unused.db", database={"url": "sqlite+aiosqlite://"})
    async with open_test_engine(config, FakeClock(T0)) as engine:
        entry = await engine.ledger.grant(ALICE, 100, reason="test")  # cached: 100
        async with engine.db.write() as conn:  # a moderator's correction, ledgered properly
            await conn.execute(
                insert(Transaction).values(
                    user_id=entry.user_id,
                    amount=-70,
                    balance_after=30,
                    kind="adjust",
                    reason="moderator",
                    ref="fix-1",
                    created_at=T0,
                )
            )
            await conn.execute(update(User).where(User.id == entry.user_id).values(points=30))
        await assert_verified(engine)
        assert await balance_of(engine, ALICE) == 30

        with pytest.raises(InsufficientFunds):  # the cache still says 100: it spends 50
            await engine.ledger.spend(ALICE, 50, reason="tts")


# ------------------------------------------------- refused, crashed and retried operations


async def test_a_crashed_level_up_leaves_the_cached_wallet_as_committed(db_path: Path) -> None:
    """A payout levels alice up and pays a reward, then the same operation crashes (a prize for
    a wallet that does not exist): the rollback must reach the cache too, and the reward is
    paid exactly once when she really levels up."""
    config = make_config(
        db_path,
        redeems=REDEEMS,
        xp={"level_rewards": {2: {"points": 50}}},
        economy={"earn": {"chat": {"points": 0, "xp": 150, "cooldown": "0s"}}},
    )
    clock = FakeClock(T0)
    events = EventFactory(clock)
    async with open_test_engine(config, clock) as engine:
        entry = await engine.ledger.grant(ALICE, 10, reason="test")
        item = await buy(engine, "free", "free-1")
        prizes = [Payout(entry.user_id, "prize", xp=150), Payout(10**9, "prize", points=1)]
        crashed, granted = await asyncio.gather(
            engine.queue.finish(item, payouts=prizes),
            engine.ledger.grant(ALICE, 5, reason="test"),
            return_exceptions=True,
        )
        assert isinstance(crashed, KeyError)
        assert not isinstance(granted, BaseException) and granted.balance == 15
        assert engine.writer.cache.accounts[entry.user_id][1:] == (15, 0, 1, 1)

        earned = await engine.earning.handle(events.chat(ALICE))  # 150 XP: level 2, reward

        assert earned.level_up is not None and earned.level_up.rewards == ((2, 50, None),)
        assert await balance_of(engine, ALICE) == 65
        settled = await engine.queue.finish(item)  # the item was left open by the rollback
        assert not settled.already_settled
        await assert_verified(engine)


async def test_a_retried_batch_pays_each_newcomer_its_welcome_once(db_path: Path) -> None:
    config = make_config(db_path, economy={"starting_points": 100})
    async with open_test_engine(config, FakeClock(T0)) as engine:
        await engine.ledger.grant(ALICE, 10, reason="test")
        poison_transactions(db_path, "poison")
        await engine.ledger.grant(ALICE, 1, reason="test")  # the cache is warm again: 111

        results = await asyncio.gather(
            engine.ledger.grant(BOB, 5, reason="test", ref="b-1"),  # bob is new
            engine.ledger.grant(ALICE, 1000, reason="test", ref="poison"),
            engine.ledger.spend(ALICE, 50, reason="tts", ref="s-1"),
            engine.ledger.grant(CAROL, 7, reason="test", ref="c-1"),  # carol is new
            engine.ledger.spend(BOB, 105, reason="tts", ref="s-2"),
            return_exceptions=True,
        )

        assert [isinstance(r, Exception) for r in results] == [False, True, False, False, False]
        assert [await balance_of(engine, v) for v in (ALICE, BOB, CAROL)] == [61, 0, 107]
        await engine.ledger.grant(BOB, 1, reason="test")  # cached now: no second welcome
        assert await balance_of(engine, BOB) == 1
        assert await count_rows(engine, Transaction.reason == "welcome") == 3
        with pytest.raises(InsufficientFunds):
            await engine.ledger.spend(ALICE, 62, reason="tts")
        await assert_verified(engine)


async def test_a_queue_refund_reaches_a_cached_wallet_once(db_path: Path) -> None:
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), FakeClock(T0)) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        running = await buy(engine, "tts", "tts-1")
        pending = await buy(engine, "tts", "tts-2")
        claimed = await engine.queue.claim("tts")  # (on the writer's connection: still warm)
        assert claimed is not None and claimed.id == running
        await engine.ledger.grant(ALICE, 1, reason="test")  # 51

        failed, cancelled = await asyncio.gather(
            engine.queue.fail(running, "no voice"), engine.queue.cancel(pending, "mod")
        )
        again = await engine.queue.fail(running, "no voice")

        assert (failed.refunded, cancelled.refunded, again.already_settled) == (25, 25, True)
        assert cancelled.balance == 101
        await engine.ledger.spend(ALICE, 101, reason="tts")
        with pytest.raises(InsufficientFunds):
            await engine.ledger.spend(ALICE, 1, reason="tts")
        await assert_verified(engine)


async def test_queue_claims_and_lease_renewals_leave_the_cache_warm(db_path: Path) -> None:
    """They run on the writer's own connection: a busy queue must not make every batch of a
    busy chat read its viewers again (a write by another connection drops the cache)."""
    async with open_test_engine(make_config(db_path, redeems=REDEEMS), FakeClock(T0)) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        first = await buy(engine, "tts", "tts-1")
        await buy(engine, "tts", "tts-2")
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(" ".join(statement.split()))

        targets = engine.db.statement_engines()
        for target in targets:
            event.listen(target, "before_cursor_execute", record)
        try:
            claimed = await engine.queue.claim("tts")
            assert claimed is not None and claimed.id == first
            await engine.queue.heartbeat([first])
            await engine.ledger.grant(ALICE, 1, reason="test")
        finally:
            for target in targets:
                event.remove(target, "before_cursor_execute", record)

        assert [s for s in seen if s.startswith(("UPDATE queue_items", "INSERT INTO trans"))]
        assert [s for s in seen if s.startswith("SELECT") and " FROM users " in s] == []
        assert [s for s in seen if s.startswith("SELECT") and " FROM identities " in s] == []
        assert await balance_of(engine, ALICE) == 51
        await assert_verified(engine)


# --------------------------------------------------------- writes the writer did not make


async def test_a_write_made_while_the_writer_waits_for_the_lock_is_seen(
    engine: Engine, db_path: Path
) -> None:
    """data_version is read after BEGIN IMMEDIATE: a commit that the writer's batch had to wait
    for (the other connection held the lock) is already counted."""
    entry = await engine.ledger.grant(ALICE, 100, reason="test")  # alice is cached
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE users SET points = points + 50 WHERE id = ?", (entry.user_id,))
        other.execute(
            "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, "
            "created_at) VALUES (?, 50, 150, 'grant', 'operator', 'op-1', ?)",
            (entry.user_id, "2026-03-01 20:00:00.000000"),
        )
        spend = asyncio.ensure_future(engine.ledger.spend(ALICE, 140, reason="tts"))
        await asyncio.sleep(0.3)
        assert not spend.done()  # the writer is waiting for the lock
        other.execute("COMMIT")
        spent = await spend
    finally:
        other.close()
    assert spent.balance == 10
    await assert_verified(engine)


async def test_a_rewarded_level_raised_by_a_data_migration_pays_no_reward(
    db_path: Path,
) -> None:
    """A migration run by another process (schema and data) must reach cached wallets: here it
    marks level rewards up to 3 as paid already, so alice's level-up pays nothing."""
    config = make_config(
        db_path,
        xp={"level_rewards": {2: {"points": 50}}},
        economy={"earn": {"chat": {"points": 0, "xp": 150, "cooldown": "0s"}}},
    )
    clock = FakeClock(T0)
    events = EventFactory(clock)
    async with open_test_engine(config, clock) as engine:
        entry = await engine.ledger.grant(ALICE, 10, reason="test")  # cached: rewarded 1
        with sqlite3.connect(db_path) as conn:
            conn.execute("CREATE TABLE legacy_rewards (user_id INTEGER, level INTEGER)")
            conn.execute("INSERT INTO legacy_rewards VALUES (?, 3)", (entry.user_id,))
            conn.execute(
                "UPDATE users SET rewarded_level = "
                "(SELECT level FROM legacy_rewards WHERE user_id = users.id) WHERE id = ?",
                (entry.user_id,),
            )

        earned = await engine.earning.handle(events.chat(ALICE))

        assert earned.level_up is not None and earned.level_up.rewards == ()
        assert await balance_of(engine, ALICE) == 10


async def test_cooldowns_written_through_database_write_in_this_process_hold(
    engine: Engine,
) -> None:
    """Other code of the same bot writing through its own pooled connection (db.write())."""
    entry = await engine.ledger.grant(ALICE, 1, reason="test")
    await engine.cooldowns.check((ALICE, "dance"), (None, "hype"))  # cached: neither runs
    async with engine.db.write() as conn:
        await conn.execute(
            insert(Cooldown),
            [
                {"scope": f"user:{entry.user_id}", "key": "dance", "expires_at": T0 + timedelta(1)},
                {"scope": "global", "key": "hype", "expires_at": T0 + timedelta(seconds=9)},
            ],
        )

    with pytest.raises(OnCooldown) as per_viewer:
        await engine.cooldowns.check((ALICE, "dance"))
    with pytest.raises(OnCooldown) as global_one:
        await engine.cooldowns.check((None, "hype"))
    assert (per_viewer.value.remaining, global_one.value.remaining) == (86400.0, 9.0)


async def test_a_balance_changed_through_database_write_in_this_process_is_spent_right(
    engine: Engine,
) -> None:
    entry = await engine.ledger.grant(ALICE, 100, reason="test")
    async with engine.db.write() as conn:
        await conn.execute(update(User).where(User.id == entry.user_id).values(points=30))
    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.spend(ALICE, 31, reason="tts")
    assert refused.value.balance == 30


# ----------------------------------------------------------- identities and their wallets


async def test_two_identities_of_one_person_share_one_cached_wallet(
    engine: Engine, db_path: Path
) -> None:
    alice = await engine.ledger.grant(ALICE, 100, reason="test")
    await engine.ledger.grant(BOB, 30, reason="test")
    with sqlite3.connect(db_path) as conn:  # an operator links bob's account to alice's wallet
        conn.execute(
            "UPDATE identities SET user_id = ? WHERE platform_user_id = 'id-bob'", (alice.user_id,)
        )

    results = await asyncio.gather(
        engine.ledger.grant(ALICE, 10, reason="test"),
        engine.ledger.grant(BOB, 5, reason="test"),
        engine.ledger.spend(BOB, 115, reason="tts"),
    )
    assert [r.balance for r in results] == [110, 115, 0]
    with pytest.raises(InsufficientFunds):  # both identities now cached, one wallet
        await engine.ledger.spend(ALICE, 1, reason="tts")

    bobby = viewer("bobby", user_id=BOB.platform_user_id)
    await engine.ledger.grant(bobby, 1, reason="test")  # renamed through the second identity
    await engine.ledger.grant(ALICE, 1, reason="test")  # the first one, cached, unchanged
    assert await stored_names(engine, BOB.platform_user_id) == ("bobby", "bobby", "bobby")
    assert await stored_names(engine, ALICE.platform_user_id) == ("alice", "alice", "bobby")
    assert engine.writer.cache.accounts[alice.user_id][:2] == ("bobby", 2)
    await assert_verified(engine)


async def test_a_newcomer_seen_under_two_names_in_one_batch_keeps_the_last(
    engine: Engine,
) -> None:
    renamed = viewer("carol_2", user_id=CAROL.platform_user_id, display_name="Carol_2")
    await asyncio.gather(
        engine.ledger.grant(CAROL, 1, reason="test"), engine.ledger.grant(renamed, 2, reason="t")
    )
    assert await stored_names(engine, CAROL.platform_user_id) == ("carol_2", "Carol_2", "Carol_2")

    await engine.ledger.grant(CAROL, 4, reason="test")  # the cached identity sees the change

    assert await stored_names(engine, CAROL.platform_user_id) == ("carol", "carol", "carol")
    assert await balance_of(engine, CAROL) == 7


# ------------------------------------------------------------------------------ cooldowns


async def test_a_global_cooldown_that_expired_between_batches_starts_again(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))
    clock.advance(timedelta(minutes=5))  # exactly over: not running any more
    await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))
    clock.advance(timedelta(minutes=1))
    with pytest.raises(OnCooldown) as refused:
        await engine.cooldowns.reserve((None, "hype", timedelta(minutes=5)))
    assert refused.value.remaining == 240.0


async def test_cooldowns_hold_with_a_cache_far_too_small(engine: Engine, clock: FakeClock) -> None:
    engine.writer.cache.limit = 1
    viewers = [viewer(f"viewer{n}") for n in range(6)]
    await asyncio.gather(
        *(engine.cooldowns.reserve((v, "dance", timedelta(minutes=1))) for v in viewers),
        engine.cooldowns.reserve((None, "hype", timedelta(minutes=1))),
    )
    clock.advance(timedelta(seconds=30))
    for v in viewers:  # one batch each: the maps are emptied again and again
        await engine.ledger.grant(v, 1, reason="test")
    outcomes = await asyncio.gather(
        *(engine.cooldowns.reserve((v, "dance", timedelta(minutes=1))) for v in viewers),
        engine.cooldowns.reserve((None, "hype", timedelta(minutes=1))),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, OnCooldown) for outcome in outcomes)


# -------------------------------------------- differential: the cache must be invisible


class _NoCache(WriterCache):
    """The writer's uncached path (what PostgreSQL runs): nothing is ever remembered."""

    def validate(self, data_version: int | None, now: datetime) -> bool:
        self.clear()
        return False


DIFF_NAMES = ("ann", "ben", "cal", "dee")
DIFF_KINDS = [
    "grant",
    "spend",
    "transfer",
    "chat",
    "chat",
    "chat",
    "cooldown",
    "global",
    "redeem",
    "fail",
    "finish",
    "advance",
    "rename",
    "refund",
    "other",
]


def _diff_config(db_path: Path) -> Config:
    return make_config(
        db_path,
        redeems={
            "tts": {
                "title": "TTS",
                "cost": 25,
                "action": {"type": "tts"},
                "cooldown": "20s",
                "global_cooldown": "10s",
            }
        },
        economy={
            "starting_points": 20,
            "max_balance": 500,
            "earn": {"chat": {"points": 3, "xp": 40, "cooldown": "15s"}},
        },
        xp={"level_rewards": {2: {"points": 30}, 3: {"points": 40}, 4: {"points": 5}}},
    )


def _diff_viewer(index: int, renamed: bool) -> Viewer:
    name = DIFF_NAMES[index]
    return viewer(
        f"{name}_x" if renamed else name,
        user_id=f"id-{name}",
        display_name=name.upper() if renamed else name,
    )


async def _diff_run(db_path: Path, seed: int, cached: bool) -> dict[str, Any]:
    """A seeded mix of every writer operation, in gathered chunks (so batches mix them), with
    another process writing now and then; returns every outcome and the tables it left."""
    rng = random.Random(seed)
    clock = FakeClock(T0)
    events = EventFactory(clock)
    config = _diff_config(db_path)
    outcomes: list[list[str]] = []
    async with open_test_engine(config, clock) as engine, open_test_engine(config, clock) as other:
        if not cached:
            engine.writer.cache = _NoCache()
        redeems = spends = 0
        for chunk in range(rng.randint(4, 12)):
            calls: list[Awaitable[Any]] = []
            for n in range(rng.randint(1, 6)):
                kind = rng.choice(DIFF_KINDS)
                a, b, amount = rng.randrange(4), rng.randrange(4), rng.randint(1, 120)
                pick = rng.randrange(10)
                renamed = rng.random() < 0.35
                who, ref = _diff_viewer(a, renamed), f"{chunk}-{n}"
                if kind == "grant":
                    calls.append(engine.ledger.grant(who, amount, reason="g", ref=ref))
                elif kind == "spend":
                    spends += 1
                    calls.append(engine.ledger.spend(who, amount, reason="s", ref=f"s{spends}"))
                elif kind == "transfer":
                    to = _diff_viewer(b, renamed)
                    calls.append(engine.ledger.transfer(who, to, amount, ref=ref))
                elif kind == "chat":
                    calls.append(engine.earning.handle(events.chat(who, event_id=f"{seed}-{ref}")))
                elif kind == "cooldown":
                    calls.append(engine.cooldowns.reserve((who, "dance", timedelta(seconds=pick))))
                elif kind == "global":
                    calls.append(engine.cooldowns.reserve((None, "hype", timedelta(seconds=pick))))
                elif kind == "redeem":
                    redeems += 1
                    session_id, since = await engine.streams.window()
                    calls.append(
                        engine.redeems.redeem(
                            "tts",
                            engine.catalog.get("tts"),
                            who,
                            "hi",
                            ref=f"r-{ref}",
                            stream_session_id=session_id,
                            counts_since=since,
                        )
                    )
                elif kind == "fail" and redeems:
                    calls.append(engine.queue.fail(1 + pick % redeems, "no voice"))
                elif kind == "finish" and redeems:
                    prize = Payout(1 + a, "prize", points=amount, xp=amount)
                    calls.append(engine.queue.finish(1 + pick % redeems, payouts=[prize]))
                elif kind == "refund" and spends:
                    calls.append(engine.ledger.refund(f"s{1 + pick % spends}"))
                elif kind == "advance":
                    clock.advance(pick * 3)
                elif kind == "rename":
                    calls.append(
                        engine.ledger.grant(_diff_viewer(a, not renamed), 1, reason="n", ref=ref)
                    )
                elif kind == "other":
                    await other.ledger.grant(who, amount, reason="o", ref=f"o-{ref}")
            results = await asyncio.gather(*calls, return_exceptions=True)
            outcomes.append([_outcome(result) for result in results])
        assert (await verify(engine.db)).violations == []
    tables: dict[str, Any] = {"outcomes": outcomes}
    with sqlite3.connect(db_path) as conn:
        for table, order in (
            ("users", "id"),
            ("identities", "id"),
            ("transactions", "id"),
            ("xp_transactions", "id"),
            ("cooldowns", "scope, key"),
            ("queue_items", "id"),
        ):
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            tables[table] = rows
    return tables


def _outcome(result: Any) -> str:
    if isinstance(result, BaseException):
        return type(result).__name__
    return repr(result).replace("'", "")


@pytest.mark.parametrize("seed", range(12))
async def test_any_mix_of_operations_leaves_what_the_uncached_writer_leaves(
    tmp_path: Path, seed: int
) -> None:
    with_cache = await _diff_run(tmp_path / "cached.db", seed, cached=True)
    without = await _diff_run(tmp_path / "uncached.db", seed, cached=False)
    assert with_cache == without
