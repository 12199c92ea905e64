"""The set-based payout applies the writer's own rules: welcome points for new wallets, the
balance cap, level-ups with their rewards (paid once), and the writer, which remembers wallets
between its batches, sees the payout's changes afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, text

from pixelbot.db.models import Base
from pixelbot.economy.payouts import Award, PaidTick, Payouts
from pixelbot.testing import assert_verified, balance_of, make_config, open_test_engine, viewer

TRANSACTIONS = Base.metadata.tables["transactions"]


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
