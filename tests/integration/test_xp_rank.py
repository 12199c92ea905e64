"""``Wallets.xp_rank``: a wallet's place by XP and the number of wallets, counted in one pass
over the wallets (wallets joined into another by ``!link`` are no longer anyone's)."""

from __future__ import annotations

from pathlib import Path

from pixelbot.clock import FakeClock, utc
from pixelbot.economy.payouts import Award, Payouts
from pixelbot.testing import make_config, open_test_engine, viewer


async def test_rank_counts_the_wallets_ahead_and_leaves_joined_ones_out(db_path: Path) -> None:
    ann, bob, cat = viewer("ann"), viewer("bob"), viewer("cat")
    bob_on_discord = viewer("bob", platform="discord")
    async with open_test_engine(make_config(db_path), FakeClock(utc(2026, 3, 1, 20))) as engine:
        awards = [Award(ann, 0, 50), Award(bob, 0, 30), Award(cat, 0, 10)]
        await Payouts(engine.writer).pay_tick(1, 1, [*awards, Award(bob_on_discord, 0, 5)])
        wallets = engine.wallets
        ids = [await wallets.find_identity(who) for who in (ann, bob, cat)]
        assert [await wallets.xp_rank(user_id) for user_id in ids] == [(1, 4), (2, 4), (3, 4)]

        # bob's discord wallet joins his twitch one: its 5 XP move there, and it stops counting
        code = (await engine.links.create_code(bob)).code
        await engine.links.link(bob_on_discord, code)
        assert [await wallets.xp_rank(user_id) for user_id in ids] == [(1, 3), (2, 3), (3, 3)]
