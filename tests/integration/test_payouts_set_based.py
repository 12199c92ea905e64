"""The set-based payout applies the writer's own rules: welcome points for new wallets, the
balance cap, level-ups with their rewards (paid once), and the writer, which remembers wallets
between its batches, sees the payout's changes afterwards. On PostgreSQL, shared by several bot
processes, the races the tick guards against are made real with a second connection that holds
a wallet's lock while the tick waits for it (a credit, a link, an unlink, a new viewer's wallet,
the same tick paid by two bots)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from pixelbot.db.models import Base
from pixelbot.economy.payouts import Award, PaidTick, Payouts
from pixelbot.errors import DatabaseDamaged
from pixelbot.testing import assert_verified, balance_of, make_config, open_test_engine, viewer

TRANSACTIONS = Base.metadata.tables["transactions"]
USERS = Base.metadata.tables["users"]
IDENTITIES = Base.metadata.tables["identities"]


async def test_a_tick_pays_by_the_writers_rules_and_the_writer_sees_it(tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "pixel.db",
        economy={"starting_points": 10, "max_balance": 30},
        xp={"level_rewards": {2: {"points": 6, "message": "{user} is level {level}!"}}},
    )
    alice, bob = viewer("alice"), viewer("bob")
    async with open_test_engine(config) as engine:
        level_two = engine.writer.policy.curve.total_xp_for(2)
        await engine.ledger.grant(alice, 15, reason="bonus")  # 10 welcome + 15 = 25
        assert await balance_of(engine, alice) == 25  # (the writer now remembers alice)
        paid = await Payouts(engine.writer).pay_tick(
            4,
            1,
            [
                Award(
                    alice, 8, level_two
                ),  # 25 + 8 hits the cap at 30; the level reward cannot fit
                Award(bob, 8, level_two),  # new: 10 welcome + 8 = 18, then + 6 for level 2 = 24
            ],
        )
        assert (paid.viewers, paid.points, paid.xp) == (2, 5 + 8, 2 * level_two)
        assert sorted(up.announcement() for up in paid.level_ups) == [
            "alice is level 2!",
            "bob is level 2!",
        ]
        assert await balance_of(engine, alice) == 30
        assert await balance_of(engine, bob) == 24
        async with engine.db.read() as conn:
            refs = set((await conn.execute(select(TRANSACTIONS.c.ref))).scalars())
        bob_id = await engine.wallets.find_identity(bob)
        assert {f"welcome:{bob_id}", f"level:{bob_id}:2", "payout:4:1:twitch:id-bob"} <= refs
        await assert_verified(engine)

        # The writer's next batch starts from what the payout committed, not from its memory.
        await engine.ledger.spend(alice, 30, reason="redeem:x")
        assert await balance_of(engine, alice) == 0
        again = await Payouts(engine.writer).pay_tick(4, 1, [Award(alice, 8, 1)])
        assert again.already_paid and await balance_of(engine, alice) == 0
        await assert_verified(engine)


async def test_chat_submitted_around_a_payout_waits_its_turn_and_is_saved(tmp_path: Path) -> None:
    """The payout runs inside the writer, alone: grants queued before and after it are
    committed in batches of their own, none refused for a locked database."""
    config = make_config(tmp_path / "pixel.db")
    async with open_test_engine(config) as engine:
        awards = [Award(viewer(f"v{n}"), 5, 1) for n in range(500)]
        before = [engine.ledger.grant(viewer(f"v{n}"), 1, reason="chat") for n in range(0, 50)]
        payout = Payouts(engine.writer).pay_tick(9, 1, awards)
        after = [engine.ledger.grant(viewer(f"v{n}"), 2, reason="chat") for n in range(50, 100)]
        results = await asyncio.gather(*before, payout, *after)
        paid = results[50]
        assert isinstance(paid, PaidTick) and paid.viewers == 500
        assert await balance_of(engine, viewer("v0")) == 1 + 5
        assert await balance_of(engine, viewer("v60")) == 5 + 2
        assert await balance_of(engine, viewer("v200")) == 5
        await assert_verified(engine)


@pytest.mark.postgresql_only(
    "SQLite's write lock keeps a link from committing while a tick reads the wallets"
)
async def test_a_wallet_joined_while_the_tick_waits_for_it_is_paid_where_it_went(
    tmp_path: Path,
) -> None:
    """Another process links B into A while the tick waits for B's lock: PostgreSQL then reads
    B as it is now (merged) but the identity as it was. The tick asks again and pays A; paying
    B would strand the points on a wallet nothing reaches any more."""
    config = make_config(tmp_path / "pixel.db")
    alice, alice_dc = viewer("alice"), viewer("alice_dc", platform="discord")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(alice, 1, reason="hello")
        await engine.ledger.grant(alice_dc, 1, reason="hello")
        a = await engine.wallets.find_identity(alice)
        b = await engine.wallets.find_identity(alice_dc)
        async with engine.db.engine.connect() as other:  # the other bot process
            await other.begin()
            await other.execute(text("SELECT id FROM users WHERE id = :b FOR UPDATE"), {"b": b})
            tick = asyncio.create_task(
                Payouts(engine.writer).pay_tick(1, 1, [Award(alice_dc, 5, 0)])
            )
            await asyncio.sleep(0.5)  # the tick is waiting for B's lock
            assert not tick.done()
            await other.execute(
                text("UPDATE identities SET user_id = :a WHERE user_id = :b"), {"a": a, "b": b}
            )
            await other.execute(
                text("UPDATE users SET merged_into = :a WHERE id = :b"), {"a": a, "b": b}
            )
            await other.commit()
        paid = await tick
        assert (paid.viewers, paid.points) == (1, 5)
        async with engine.db.read() as conn:
            rows = await conn.execute(
                select(TRANSACTIONS.c.user_id).where(TRANSACTIONS.c.reason == "watch")
            )
            assert list(rows.scalars()) == [a]


# ------------------------------------------------- another bot process on the same database


@pytest.mark.postgresql_only(
    "SQLite's write lock keeps another program from writing while a tick runs"
)
async def test_a_wallet_another_bot_writes_while_the_tick_waits_is_paid_from_its_new_balance(
    tmp_path: Path,
) -> None:
    """Another process credits alice while the tick waits for her lock: the tick reads her
    balance as that process committed it, so the cap applies to it and the ledger row's
    ``balance_after`` follows it (a tick that kept the balance it read before would write
    11 + 10 over 95, and ``db verify`` would fail)."""
    config = make_config(tmp_path / "pixel.db", economy={"starting_points": 10, "max_balance": 100})
    alice, bob = viewer("alice"), viewer("bob")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(alice, 1, reason="hello")  # 10 welcome points + 1
        await engine.ledger.grant(bob, 1, reason="hello")
        a = await engine.wallets.find_identity(alice)
        now = engine.clock.now()
        async with engine.db.engine.connect() as other:  # the other bot process
            await other.begin()
            await other.execute(text("SELECT id FROM users WHERE id = :a FOR UPDATE"), {"a": a})
            tick = asyncio.create_task(
                Payouts(engine.writer).pay_tick(1, 1, [Award(bob, 10, 1), Award(alice, 10, 1)])
            )
            await asyncio.sleep(0.5)  # the tick is waiting for alice's lock
            assert not tick.done()
            await other.execute(
                USERS.update().where(USERS.c.id == a).values(points=95, updated_at=now)
            )
            await other.execute(
                TRANSACTIONS.insert().values(
                    user_id=a,
                    amount=84,
                    balance_after=95,
                    kind="grant",
                    reason="bonus",
                    ref="other-bot:bonus",
                    created_at=now,
                )
            )
            await other.commit()
        paid = await tick
        assert (paid.viewers, paid.points) == (2, 10 + 5)  # alice: only 5 fit under the cap
        assert await balance_of(engine, alice) == 100
        async with engine.db.read() as conn:
            rows = await conn.execute(
                select(TRANSACTIONS.c.reason, TRANSACTIONS.c.amount, TRANSACTIONS.c.balance_after)
                .where(TRANSACTIONS.c.user_id == a)
                .order_by(TRANSACTIONS.c.id)
            )
            assert [tuple(row) for row in rows][-2:] == [("bonus", 84, 95), ("watch", 5, 100)]
        await assert_verified(engine)


@pytest.mark.postgresql_only(
    "SQLite's write lock keeps another program from making a wallet while a tick runs"
)
async def test_a_new_viewers_wallet_made_by_another_bot_during_the_tick_is_the_one_paid(
    tmp_path: Path,
) -> None:
    """Another process makes bob's wallet (his first chat line there) while the tick, which
    found him new, is about to make one too: the tick's identity insert waits for that
    process, finds bob's identity taken, and the whole tick is rolled back and run again
    (``DatabaseConflict``, retried by the writer), paying bob's one wallet. Nothing of the
    first try stays: no second wallet, no payout to it."""
    config = make_config(tmp_path / "pixel.db")
    alice, bob = viewer("alice"), viewer("bob")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(alice, 1, reason="hello")
        now = engine.clock.now()
        async with engine.db.engine.connect() as other:  # the other bot process
            await other.begin()
            (b,) = await engine.db.next_ids(other, USERS, 1)
            await other.execute(
                USERS.insert().values(
                    id=b,
                    display_name="bob",
                    points=0,
                    xp=0,
                    level=1,
                    rewarded_level=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            await other.execute(
                IDENTITIES.insert().values(
                    user_id=b,
                    platform=bob.platform,
                    platform_user_id=bob.platform_user_id,
                    login=bob.login,
                    display_name=bob.display_name,
                    created_at=now,
                    updated_at=now,
                )
            )
            tick = asyncio.create_task(
                Payouts(engine.writer).pay_tick(1, 1, [Award(alice, 5, 1), Award(bob, 5, 1)])
            )
            await asyncio.sleep(0.5)  # the tick waits to know whether bob's identity is taken
            assert not tick.done()
            await other.commit()
        paid = await tick
        assert (paid.viewers, paid.points) == (2, 10)
        assert await engine.wallets.find_identity(bob) == b
        assert await balance_of(engine, bob) == 5
        assert await balance_of(engine, alice) == 1 + 5
        async with engine.db.read() as conn:
            wallets = (await conn.execute(select(func.count()).select_from(USERS))).scalar_one()
            assert wallets == 2
        await assert_verified(engine)


@pytest.mark.postgresql_only(
    "SQLite's write lock lets one tick at a time read whether the tick was paid"
)
async def test_two_bots_paying_the_same_tick_at_once_pay_it_once(tmp_path: Path) -> None:
    """Two bot processes on one database run the payout job for the same tick at the same
    moment, both held up by a third on one wallet: one pays the tick, the other waits for it on
    the tick's lock and then finds it paid (without that lock both would find it unpaid, and the
    second would fail on the first's ledger refs)."""
    config = make_config(tmp_path / "pixel.db")
    awards = [Award(viewer(f"v{n}"), 5, 1) for n in range(300)]
    async with open_test_engine(config) as first, open_test_engine(config) as second:
        await Payouts(first.writer).pay_tick(4, 1, awards)  # the viewers have wallets
        v0 = await first.wallets.find_identity(viewer("v0"))
        async with first.db.engine.connect() as third:
            await third.begin()
            await third.execute(text("SELECT id FROM users WHERE id = :v FOR UPDATE"), {"v": v0})
            ticks = asyncio.gather(
                Payouts(first.writer).pay_tick(5, 1, awards),
                Payouts(second.writer).pay_tick(5, 1, awards),
            )
            await asyncio.sleep(0.5)
            assert not ticks.done()
            await third.rollback()
        results = await ticks
        assert sorted(result.already_paid for result in results) == [False, True]
        assert sum(result.points for result in results) == 5 * 300
        assert await balance_of(first, viewer("v299")) == 10
        await assert_verified(first)


@pytest.mark.postgresql_only(
    "SQLite's write lock keeps an unlink from committing while a tick reads the wallets"
)
async def test_an_account_unlinked_while_the_tick_waits_is_paid_in_its_new_wallet(
    tmp_path: Path,
) -> None:
    """Another process splits alice_dc off alice's wallet W (as ``!unlink`` does: W locked, the
    identity moved to a new wallet N) while the tick waits for W's lock. W itself is not
    marked, so only the check of the identities under the locks sees it: the tick reads again
    and pays alice_dc in N, where it now belongs."""
    config = make_config(tmp_path / "pixel.db")
    alice, alice_dc = viewer("alice"), viewer("alice_dc", platform="discord")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(alice, 1, reason="hello")
        code = (await engine.links.create_code(alice)).code
        await engine.links.link(alice_dc, code)
        w = await engine.wallets.find_identity(alice)
        assert await engine.wallets.find_identity(alice_dc) == w
        now = engine.clock.now()
        async with engine.db.engine.connect() as other:  # the other bot process
            await other.begin()
            await other.execute(text("SELECT id FROM users WHERE id = :w FOR UPDATE"), {"w": w})
            tick = asyncio.create_task(
                Payouts(engine.writer).pay_tick(1, 1, [Award(alice_dc, 5, 0)])
            )
            await asyncio.sleep(0.5)  # the tick is waiting for W's lock
            assert not tick.done()
            (n,) = await engine.db.next_ids(other, USERS, 1)
            await other.execute(
                USERS.insert().values(
                    id=n,
                    display_name="alice_dc",
                    points=0,
                    xp=0,
                    level=1,
                    rewarded_level=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            await other.execute(
                IDENTITIES.update()
                .where(IDENTITIES.c.platform == "discord")
                .values(user_id=n, updated_at=now)
            )
            await other.commit()
        paid = await tick
        assert (paid.viewers, paid.points) == (1, 5)
        async with engine.db.read() as conn:
            rows = await conn.execute(
                select(TRANSACTIONS.c.user_id).where(TRANSACTIONS.c.reason == "watch")
            )
            assert list(rows.scalars()) == [n]
        await assert_verified(engine)


@pytest.mark.postgresql_only(
    "SQLite gives a new wallet an id above the largest one; only a sequence can fall behind"
)
async def test_a_users_sequence_behind_the_wallets_pays_nobody_and_says_how_to_repair(
    tmp_path: Path,
) -> None:
    """After a restore of the data without its sequence, a new viewer's id can be an older
    wallet's. The tick's upsert would have overwritten that wallet (bob at 5, his ledger
    saying 100); instead nothing is paid and the operator hears how to repair it."""
    config = make_config(tmp_path / "pixel.db", economy={"starting_points": 0})
    alice, bob, carol = viewer("alice"), viewer("bob"), viewer("carol")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(alice, 100, reason="hello")
        await engine.ledger.grant(bob, 100, reason="hello")
        b = await engine.wallets.find_identity(bob)
        async with engine.db.engine.begin() as conn:  # as a data-only restore leaves it
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('users', 'id'), :b - 1)"), {"b": b}
            )
        with pytest.raises(DatabaseDamaged, match="users id sequence is behind"):
            await Payouts(engine.writer).pay_tick(1, 1, [Award(alice, 5, 1), Award(carol, 5, 1)])
        assert await balance_of(engine, bob) == 100
        assert await balance_of(engine, alice) == 100  # nothing of the tick was saved
        await assert_verified(engine)
