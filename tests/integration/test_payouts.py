"""Watch-time payouts on real SQLite files: the console's /join, /part, /live and /tick drive
the payout job on the simulated clock; a tick is paid once, whatever happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pixelbot.config import Config
from pixelbot.economy.payouts import Award, Payouts
from pixelbot.events import Viewer
from pixelbot.testing import (
    assert_verified,
    console_session,
    make_config,
    open_test_engine,
    viewer,
)


def watch_config(tmp_path: Path, ignore: tuple[str, ...] = (), **watch: Any) -> Config:
    return make_config(
        tmp_path / "pixel.db",
        commands={"reply_rate": {"messages": 100, "per": "30s"}},
        economy={
            "ignore": list(ignore),
            "earn": {
                "dropin": {"points": 0, "xp": 0},
                "chat": {"points": 0, "xp": 0},
                "watch": {"points": 5, "xp": 1, "every": "5m", **watch},
            },
        },
    )


async def test_viewers_present_while_live_are_paid_every_interval(tmp_path: Path) -> None:
    async with console_session(watch_config(tmp_path)) as bot:
        lines = await bot.run(
            "/join alice",
            "/join bob",
            "/tick 600",  # not live: nothing
            "/live",
            "/tick 299",  # not a full interval yet
            "/tick 1",
            "/part bob",
            "/tick 300",
            "alice: !points",
            "bob: !points",
        )
        assert lines == [
            "[console] the stream is live",
            "[payout] tick 1: 10 pixels and 2 XP to 2 viewers watching",
            "[payout] tick 2: 5 pixels and 1 XP to 1 viewer watching",
            "Pixel: @alice you have 10 pixels",
            "Pixel: @bob you have 5 pixels",
        ]
        await bot.verified()


async def test_active_within_pays_only_those_who_chatted_and_roles_multiply(
    tmp_path: Path,
) -> None:
    config = watch_config(tmp_path, active_within="10m", multipliers={"subscriber": 3.0})
    async with console_session(config) as bot:
        lines = await bot.run(
            "/join alice",
            "/join bob",
            "/join carol",
            "/sub carol 1 1",  # a subscriber mid-stream: her next payout is tripled
            "/live",
            "alice: hi",
            "carol: hi",
            "/tick 300",
            "/tick 600",  # nobody chatted in the last 10 minutes: no payout, no line
            "alice: !points",
            "bob: !points",
            "carol: !points",
        )
        assert lines[-4:] == [
            "[payout] tick 1: 20 pixels and 4 XP to 2 viewers watching",
            "Pixel: @alice you have 5 pixels",
            "Pixel: @bob you have 0 pixels",  # present, silent
            "Pixel: @carol you have 215 pixels",  # 200 for the sub + 5 x 3
        ]
        await bot.verified()


async def test_ignored_accounts_present_are_not_paid(tmp_path: Path) -> None:
    """``economy.ignore`` (other bots) earns nothing from watching either: a bot sits in every
    chatter list, and was paid each tick like a viewer."""
    config = watch_config(tmp_path, ignore=("@NightBot",))
    async with console_session(config) as bot:
        lines = await bot.run("/join alice", "/join nightbot", "/live", "/tick 300")
        assert lines == [
            "[console] the stream is live",
            "[payout] tick 1: 5 pixels and 1 XP to 1 viewer watching",
        ]
        await bot.verified()


async def test_a_viewer_whose_name_holds_a_nul_does_not_fail_the_tick(tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text: a viewer so named (a relay, a buggy adapter) made every
    tick fail for everyone present. Names are cleaned when the viewer is built."""
    config = watch_config(tmp_path)
    known, odd = viewer("alice"), Viewer("twitch", "t-odd", "o\x00dd", "O\x00dd")
    async with open_test_engine(config) as engine:
        await engine.ledger.grant(known, 1, reason="bonus")  # a wallet before the tick
        payouts = Payouts(engine.writer)
        first = await payouts.pay_tick(1, 1, [Award(known, 5, 1), Award(odd, 5, 1)])
        renamed = viewer("al\x00ice", user_id="id-alice", display_name="Al\x00ice")  # known
        second = await payouts.pay_tick(1, 2, [Award(renamed, 5, 1), Award(odd, 5, 1)])
        assert (first.viewers, second.viewers) == (2, 2)
        summary = await engine.wallets.summary(await engine.wallets.find_identity(odd))
        assert (summary.points, summary.display_name) == (10, "O\ufffddd")
        await assert_verified(engine)


async def test_a_tick_is_paid_once_even_when_asked_again(tmp_path: Path) -> None:
    config = watch_config(tmp_path)
    alice, bob = viewer("alice"), viewer("bob")
    awards = [Award(alice, 5, 1), Award(bob, 10, 2)]
    async with open_test_engine(config) as engine:
        payouts = Payouts(engine.writer)
        first = await payouts.pay_tick(1, 7, awards)
        again = await payouts.pay_tick(1, 7, awards)  # a retried job, a restart mid-tick
        later = await payouts.pay_tick(1, 8, awards[:1])
    assert (first.viewers, first.points, first.xp, first.already_paid) == (2, 15, 3, False)
    assert (again.viewers, again.already_paid) == (0, True)
    assert (later.viewers, later.points) == (1, 5)

    async with open_test_engine(config) as engine:  # and after a restart
        repeat = await Payouts(engine.writer).pay_tick(1, 7, awards)
        assert repeat.already_paid
        summary = await engine.wallets.summary(await engine.wallets.find_identity(alice))
        assert summary.points == 10  # ticks 7 and 8, once each


@pytest.mark.parametrize("viewers", [1, 500])
async def test_one_tick_is_one_transaction_for_any_number_of_viewers(
    tmp_path: Path, viewers: int
) -> None:
    config = watch_config(tmp_path)
    awards = [Award(viewer(f"v{n}"), 5, 1) for n in range(viewers)]
    async with open_test_engine(config) as engine:
        paid = await Payouts(engine.writer).pay_tick(3, 1, awards)
        assert (paid.viewers, paid.points) == (viewers, 5 * viewers)
        async with engine.db.read() as conn:
            count = (
                await conn.execute(text("SELECT count(*) FROM transactions WHERE reason='watch'"))
            ).scalar_one()
        assert count == viewers
