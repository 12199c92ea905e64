"""Earning rules on the real engine: what each platform event pays, once, and what it logs.

Also the things that must outlive a restart: balances and cooldowns.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select, update

from pixelbot.app import Engine
from pixelbot.clock import FakeClock
from pixelbot.db.models import EventRow, Identity, Transaction, User, XpTransaction
from pixelbot.db.verify import verify
from pixelbot.domain.xp import XpCurve
from pixelbot.economy.batch import LevelUp
from pixelbot.economy.earning import Earned
from pixelbot.errors import OnCooldown, UnknownViewer
from pixelbot.events import Event, GiftedSubs, Viewer
from pixelbot.testing import EventFactory, make_config, open_test_engine, viewer

TRANSACTIONS: Table = Transaction.__table__  # type: ignore[assignment]
XP_TRANSACTIONS: Table = XpTransaction.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
IDENTITIES: Table = Identity.__table__  # type: ignore[assignment]

ALICE = viewer("alice")
BOB = viewer("bob")
CURVE = XpCurve()  # the default power curve: level 3 at 448 XP, 4 at 1170, 5 at 2383


# ----------------------------------------------------------------------------------- helpers


@asynccontextmanager
async def engine_with(db_path: Path, clock: FakeClock, **sections: Any) -> AsyncIterator[Engine]:
    """An engine on ``db_path`` with some config sections overridden."""
    async with open_test_engine(make_config(db_path, **sections), clock) as engine:
        yield engine


async def wallet(engine: Engine, who: Viewer) -> tuple[int, int, int]:
    """(points, xp, level) of a viewer."""
    summary = await engine.wallets.summary(await engine.wallets.find(who.login, who.platform))
    return summary.points, summary.xp, summary.level


async def points(engine: Engine, who: Viewer) -> int:
    return (await wallet(engine, who))[0]


async def rows(engine: Engine, table: Table, *where: Any) -> list[Any]:
    async with engine.db.read() as conn:
        return list((await conn.execute(select(table).where(*where).order_by(table.c.id))).all())


async def count(engine: Engine, table: Table, *where: Any) -> int:
    query = select(func.count()).select_from(table).where(*where)
    async with engine.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def assert_verified(engine: Engine) -> None:
    report = await verify(engine.db)
    assert report.violations == []


def paid(earned: Earned) -> tuple[int, int, str | None]:
    return earned.points, earned.xp, earned.skipped


_gift_ids = itertools.count(1)


def gift(clock: FakeClock, gifter: Viewer | None, count: int, tier: int = 1) -> GiftedSubs:
    """Gifted subs (EventFactory has no builder for them), with a fresh event id."""
    return GiftedSubs(
        id=f"gift-{next(_gift_ids)}",
        platform="twitch",
        occurred_at=clock.now(),
        gifter=gifter,
        count=count,
        tier=tier,
    )


# --------------------------------------------------------------------------------------- chat


async def test_chat_pays_once_per_cooldown(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    first = await engine.earning.handle(events.chat(ALICE))
    assert paid(first) == (1, 1, None)
    assert first.user_id == await engine.wallets.find("alice")

    clock.advance(30)
    assert paid(await engine.earning.handle(events.chat(ALICE))) == (0, 0, "cooldown")
    assert await wallet(engine, ALICE) == (1, 1, 1)

    clock.advance(31)  # 61 s after the paid message
    assert paid(await engine.earning.handle(events.chat(ALICE))) == (1, 1, None)
    assert await wallet(engine, ALICE) == (2, 2, 1)

    assert await count(engine, EVENTS, EVENTS.c.kind == "chat") == 3  # every message is logged
    assert await count(engine, EVENTS, EVENTS.c.kind == "award") == 2
    await assert_verified(engine)


async def test_chat_cooldown_is_per_viewer(engine: Engine, events: EventFactory) -> None:
    await engine.earning.handle(events.chat(ALICE))
    assert paid(await engine.earning.handle(events.chat(BOB))) == (1, 1, None)
    assert paid(await engine.earning.handle(events.chat(ALICE))) == (0, 0, "cooldown")


async def test_chat_cooldown_is_visible_to_commands(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    earned = await engine.earning.handle(events.chat(ALICE))
    assert earned.user_id is not None
    clock.advance(15)
    assert await engine.cooldowns.remaining(earned.user_id, "earn:chat") == 45.0


async def test_a_redelivered_event_pays_once_and_is_logged_once(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    message = events.chat(ALICE, event_id="msg-1")
    first = await engine.earning.handle(message)
    clock.advance(120)  # even once the cooldown is over
    again = await engine.earning.handle(message)

    assert paid(first) == (1, 1, None)
    assert again.skipped == "duplicate"
    assert (again.points, again.xp) == (0, 0)
    assert await wallet(engine, ALICE) == (1, 1, 1)
    assert await count(engine, EVENTS, EVENTS.c.ref == message.ref) == 1
    assert await count(engine, EVENTS, EVENTS.c.cause_ref == message.ref) == 1
    await assert_verified(engine)


async def test_a_redelivery_inside_the_same_batch_pays_once(
    engine: Engine, events: EventFactory
) -> None:
    tip = events.tip(ALICE, "10.00", event_id="tip-1")

    results = await asyncio.gather(*(engine.earning.handle(tip) for _ in range(10)))

    assert [r.skipped for r in results].count(None) == 1
    assert [r.skipped for r in results].count("duplicate") == 9
    assert await wallet(engine, ALICE) == (10, 1, 1)
    assert await count(engine, EVENTS, EVENTS.c.ref == tip.ref) == 1


# ------------------------------------------------------------------------------ follows, subs


async def test_follow_pays_once_per_person_ever(engine: Engine, events: EventFactory) -> None:
    assert paid(await engine.earning.handle(events.follow(ALICE))) == (50, 10, None)
    refollow = await engine.earning.handle(events.follow(ALICE))  # unfollow, follow again

    assert paid(refollow) == (0, 0, "already_paid")
    assert await wallet(engine, ALICE) == (50, 10, 1)
    assert await count(engine, EVENTS, EVENTS.c.kind == "follow") == 2
    assert paid(await engine.earning.handle(events.follow(BOB))) == (50, 10, None)
    await assert_verified(engine)


@pytest.mark.parametrize(("tier", "points", "xp"), [(1, 200, 50), (2, 400, 100), (3, 1000, 250)])
async def test_sub_tiers_multiply(
    engine: Engine, events: EventFactory, tier: int, points: int, xp: int
) -> None:
    earned = await engine.earning.handle(events.sub(ALICE, tier=tier))
    assert paid(earned) == (points, xp, None)
    assert (await wallet(engine, ALICE))[:2] == (points, xp)


async def test_sub_pays_once_per_month(engine: Engine, events: EventFactory) -> None:
    assert paid(await engine.earning.handle(events.sub(ALICE, months=3))) == (200, 50, None)
    # The same resub announced twice (two event ids, one month):
    assert paid(await engine.earning.handle(events.sub(ALICE, months=3))) == (0, 0, "already_paid")
    assert paid(await engine.earning.handle(events.sub(ALICE, months=4))) == (200, 50, None)

    assert (await wallet(engine, ALICE))[:2] == (400, 100)
    assert await count(engine, TRANSACTIONS, TRANSACTIONS.c.reason == "sub") == 2
    await assert_verified(engine)


async def test_sub_without_per_month_pays_per_event(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(
        db_path, clock, economy={"earn": {"sub": {"per_month": False}}}
    ) as engine:
        await engine.earning.handle(events.sub(ALICE, months=3))
        second = await engine.earning.handle(events.sub(ALICE, months=3))
        assert paid(second) == (200, 50, None)
        assert await points(engine, ALICE) == 400


async def test_gifted_subs_pay_the_gifter_per_sub(engine: Engine, clock: FakeClock) -> None:
    five = await engine.earning.handle(gift(clock, ALICE, 5))
    tier_two = await engine.earning.handle(gift(clock, ALICE, 2, tier=2))

    assert paid(five) == (500, 100, None)
    assert paid(tier_two) == (400, 80, None)
    assert (await wallet(engine, ALICE))[:2] == (900, 180)
    await assert_verified(engine)


async def test_anonymous_gift_pays_nobody_but_is_logged(engine: Engine, clock: FakeClock) -> None:
    anonymous = gift(clock, None, 10)
    earned = await engine.earning.handle(anonymous)

    assert (earned.user_id, earned.points, earned.skipped) == (None, 0, "anonymous")
    [row] = await rows(engine, EVENTS, EVENTS.c.ref == anonymous.ref)
    assert (row.kind, row.user_id, row.payload) == ("gift", None, {"count": 10, "tier": 1})
    assert await count(engine, USERS) == 0
    assert await count(engine, TRANSACTIONS) == 0


# ------------------------------------------------------------------------- tips, bits, raids


@pytest.mark.parametrize(
    ("amount", "points", "xp"), [("10.00", 10, 1), ("4.99", 4, 0), ("25.55", 25, 2)]
)
async def test_tip_pays_per_unit_rounding_down(
    engine: Engine, events: EventFactory, amount: str, points: int, xp: int
) -> None:
    assert paid(await engine.earning.handle(events.tip(ALICE, amount))) == (points, xp, None)
    assert (await wallet(engine, ALICE))[:2] == (points, xp)


async def test_a_tip_worth_nothing_pays_nothing(engine: Engine, events: EventFactory) -> None:
    tip = events.tip(ALICE, "0.30")
    earned = await engine.earning.handle(tip)

    assert paid(earned) == (0, 0, "zero")
    assert await count(engine, EVENTS, EVENTS.c.ref == tip.ref) == 1
    assert await count(engine, TRANSACTIONS) == 0


@pytest.mark.parametrize(("bits", "points", "xp"), [(100, 100, 10), (250, 250, 25), (99, 99, 9)])
async def test_cheer_pays_per_hundred_bits(
    engine: Engine, events: EventFactory, bits: int, points: int, xp: int
) -> None:
    assert paid(await engine.earning.handle(events.cheer(ALICE, bits))) == (points, xp, None)


async def test_raid_pays_per_viewer(engine: Engine, events: EventFactory) -> None:
    assert paid(await engine.earning.handle(events.raid(ALICE, 37))) == (37, 0, None)
    assert await points(engine, ALICE) == 37


async def test_raid_is_capped_by_max_points(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(
        db_path, clock, economy={"earn": {"raid": {"max_points": 100}}}
    ) as engine:
        assert paid(await engine.earning.handle(events.raid(ALICE, 500))) == (100, 0, None)
        assert paid(await engine.earning.handle(events.raid(BOB, 60))) == (60, 0, None)
        assert (await points(engine, ALICE), await points(engine, BOB)) == (100, 60)


# ------------------------------------------------------------------------------------ drop-in


async def test_dropin_pays_once_an_hour(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    assert paid(await engine.earning.handle(events.presence(ALICE))) == (25, 5, None)
    assert paid(await engine.earning.handle(events.chat(ALICE))) == (1, 1, None)  # own cooldown

    clock.advance(timedelta(minutes=30))
    assert paid(await engine.earning.handle(events.presence(ALICE))) == (0, 0, "cooldown")

    clock.advance(timedelta(minutes=31))
    assert paid(await engine.earning.handle(events.presence(ALICE))) == (25, 5, None)
    assert (await wallet(engine, ALICE))[:2] == (51, 11)
    await assert_verified(engine)


# --------------------------------------------------------------------- caps and welcome points


async def test_earnings_stop_at_max_balance(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(db_path, clock, economy={"max_balance": 1000}) as engine:
        await engine.ledger.grant(ALICE, 990, reason="bonus")

        cheer = await engine.earning.handle(events.cheer(ALICE, 250))
        full = await engine.earning.handle(events.cheer(ALICE, 100))

        assert (cheer.points, cheer.xp) == (10, 25)
        assert (full.points, full.xp, full.skipped) == (0, 10, None)  # XP still counts
        assert await wallet(engine, ALICE) == (1000, 35, 1)
        await assert_verified(engine)


async def test_starting_points_welcome_a_new_viewer_once(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(db_path, clock, economy={"starting_points": 100}) as engine:
        await engine.earning.handle(events.chat(ALICE))
        await engine.earning.handle(events.follow(ALICE))

        assert await points(engine, ALICE) == 151
        welcome = await rows(engine, TRANSACTIONS, TRANSACTIONS.c.reason == "welcome")
        assert [(row.amount, row.balance_after) for row in welcome] == [(100, 100)]
        await assert_verified(engine)


# ---------------------------------------------------------------------------- ignore, rename


async def test_ignored_bots_earn_nothing_and_get_no_wallet(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    config = {"ignore": ["Nightbot", "@StreamElements"]}
    async with engine_with(db_path, clock, economy=config) as engine:
        for bot in (viewer("nightbot"), viewer("NightBot"), viewer("streamelements")):
            message = events.chat(bot)
            earned = await engine.earning.handle(message)

            assert (earned.user_id, earned.points, earned.skipped) == (None, 0, "ignored")
            [row] = await rows(engine, EVENTS, EVENTS.c.ref == message.ref)
            assert (row.kind, row.user_id) == ("chat", None)
            assert row.payload["login"] == bot.login

        assert await count(engine, USERS) == 0
        assert await count(engine, IDENTITIES) == 0
        assert await count(engine, TRANSACTIONS) == 0
        assert paid(await engine.earning.handle(events.chat(ALICE))) == (1, 1, None)


async def test_a_renamed_viewer_keeps_the_wallet(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    before = viewer("alice", user_id="tw-42", display_name="Alice")
    after = viewer("alice_the_great", user_id="tw-42", display_name="AliceTheGreat")
    first = await engine.earning.handle(events.follow(before))

    clock.advance(61)
    second = await engine.earning.handle(events.chat(after))
    refollow = await engine.earning.handle(events.follow(after))

    assert second.user_id == first.user_id
    assert refollow.skipped == "already_paid"  # the same person, whatever the name
    assert await engine.wallets.find("alice_the_great") == first.user_id
    assert await engine.wallets.find("@AliceTheGreat") == first.user_id
    with pytest.raises(UnknownViewer):
        await engine.wallets.find("alice")
    summary = await engine.wallets.summary(first.user_id)
    assert (summary.display_name, summary.points) == ("AliceTheGreat", 51)
    [identity] = await rows(engine, IDENTITIES)
    assert (identity.platform_user_id, identity.login, identity.display_name) == (
        "tw-42",
        "alice_the_great",
        "AliceTheGreat",
    )
    assert await count(engine, USERS) == 1
    await assert_verified(engine)


async def test_same_login_on_another_platform_is_another_wallet(
    engine: Engine, events: EventFactory
) -> None:
    on_discord = viewer("alice", platform="discord")
    await engine.earning.handle(events.follow(ALICE))
    await engine.earning.handle(events.chat(on_discord))

    assert await points(engine, ALICE) == 50
    assert await points(engine, on_discord) == 1
    assert await count(engine, USERS) == 2


# ---------------------------------------------------------------------------------- event log


async def test_every_event_is_logged_with_its_outcome(
    engine: Engine, clock: FakeClock, events: EventFactory
) -> None:
    incoming: list[Event] = [
        events.chat(ALICE),
        events.follow(ALICE),
        events.sub(ALICE, tier=2),
        gift(clock, BOB, 3),
        events.tip(BOB, "5.00"),
        events.cheer(BOB, 300),
        events.raid(BOB, 12),
        events.presence(ALICE),
    ]
    for event in incoming:
        await engine.earning.handle(event)

    for event in incoming:
        [logged] = await rows(engine, EVENTS, EVENTS.c.ref == event.ref)
        assert (logged.kind, logged.platform) == (event.kind, "twitch")
        assert logged.user_id is not None
        [award] = await rows(
            engine, EVENTS, EVENTS.c.cause_ref == event.ref, EVENTS.c.kind == "award"
        )
        assert (award.kind, award.user_id) == ("award", logged.user_id)
        assert award.payload["rule"] == event.kind
    assert await count(engine, EVENTS, EVENTS.c.ref.is_not(None)) == len(incoming)
    await assert_verified(engine)


# ---------------------------------------------------------------------------------- level-ups

REWARDS = {3: {"points": 500, "message": "hi"}, 4: {"points": 50}}


async def test_a_big_award_jumps_several_levels_and_pays_each_reward_once(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    sections = {
        "economy": {"earn": {"tip": {"xp_per_unit": 100}}},
        "xp": {"level_rewards": REWARDS},
    }
    async with engine_with(db_path, clock, **sections) as engine:
        tip = events.tip(ALICE, "12.50")  # 12 points, 1250 XP: level 1 -> 4
        earned = await engine.earning.handle(tip)

        assert earned.user_id is not None
        assert earned.level_up == LevelUp(
            earned.user_id, "alice", 1, 4, ((3, 500, "hi"), (4, 50, None))
        )
        assert await wallet(engine, ALICE) == (12 + 500 + 50, 1250, 4)
        rewards = await rows(engine, TRANSACTIONS, TRANSACTIONS.c.reason == "level_reward")
        assert [(r.amount, r.ref) for r in rewards] == [
            (500, f"level:{earned.user_id}:3"),
            (50, f"level:{earned.user_id}:4"),
        ]
        [xp_row] = await rows(engine, XP_TRANSACTIONS)
        assert (xp_row.amount, xp_row.xp_after, xp_row.level_after) == (1250, 1250, 4)
        [level_up] = await rows(engine, EVENTS, EVENTS.c.kind == "level_up")
        assert (level_up.cause_ref, level_up.payload) == (tip.ref, {"from": 1, "to": 4})

        # More XP inside level 4, then on to level 5 (no reward there): nothing paid twice.
        assert (await engine.earning.handle(events.tip(ALICE, "1.00"))).level_up is None
        five = await engine.earning.handle(events.tip(ALICE, "12.00"))
        assert five.level_up == LevelUp(earned.user_id, "alice", 4, 5, ())
        assert await wallet(engine, ALICE) == (575, 2550, 5)
        assert await count(engine, TRANSACTIONS, TRANSACTIONS.c.reason == "level_reward") == 2
        await assert_verified(engine)


async def test_a_raid_with_xp_per_viewer_levels_the_raider_up(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    sections = {"economy": {"earn": {"raid": {"xp_per_viewer": 10}}}}
    async with engine_with(db_path, clock, **sections) as engine:
        earned = await engine.earning.handle(events.raid(ALICE, 50))

        assert (earned.points, earned.xp) == (50, 500)
        assert earned.level_up is not None
        assert (earned.level_up.old_level, earned.level_up.new_level) == (1, 3)
        assert earned.level_up.rewards == ()
        assert await wallet(engine, ALICE) == (50, 500, CURVE.level_for(500))


async def test_a_reward_level_reached_again_is_not_paid_again(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    sections = {
        "economy": {"earn": {"tip": {"xp_per_unit": 100}}},
        "xp": {"level_rewards": REWARDS},
    }
    async with engine_with(db_path, clock, **sections) as engine:
        earned = await engine.earning.handle(events.tip(ALICE, "5.00"))  # 500 XP: level 3
        assert earned.user_id is not None and earned.level_up is not None
        assert earned.level_up.rewards == ((3, 500, "hi"),)

        await _remove_xp(engine, earned.user_id, 450)  # back to level 1
        assert await wallet(engine, ALICE) == (505, 50, 1)

        again = await engine.earning.handle(events.tip(ALICE, "4.00"))  # 450 XP: level 3 again
        assert again.level_up is not None
        assert (again.level_up.old_level, again.level_up.new_level) == (1, 3)
        assert again.level_up.rewards == ()
        assert await wallet(engine, ALICE) == (509, 450, 3)
        assert await count(engine, TRANSACTIONS, TRANSACTIONS.c.reason == "level_reward") == 1
        await assert_verified(engine)


async def _remove_xp(engine: Engine, user_id: int, amount: int) -> None:
    """Stand-in for a moderator's XP removal (no such API yet): a negative XP ledger row and
    the cached wallet kept in step, exactly as the ledger invariants require."""
    async with engine.db.write() as conn:
        user = (await conn.execute(select(USERS).where(USERS.c.id == user_id))).one()
        xp = user.xp - amount
        level = CURVE.level_for(xp)
        await conn.execute(
            insert(XP_TRANSACTIONS).values(
                user_id=user_id,
                amount=-amount,
                xp_after=xp,
                level_after=level,
                reason="moderator",
                ref=f"remove-xp:{user_id}:{xp}",
                created_at=engine.clock.now(),
            )
        )
        await conn.execute(update(USERS).where(USERS.c.id == user_id).values(xp=xp, level=level))


async def test_mee6_viewers_start_at_level_zero(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    sections = {
        "xp": {"curve": {"kind": "mee6"}},
        "economy": {"earn": {"cheer": {"xp_per_100_bits": 100}}},
    }
    async with engine_with(db_path, clock, **sections) as engine:
        await engine.earning.handle(events.chat(ALICE))
        assert await wallet(engine, ALICE) == (1, 1, 0)

        earned = await engine.earning.handle(events.cheer(ALICE, 254))  # 254 XP, 255 total
        assert earned.level_up is not None
        assert (earned.level_up.old_level, earned.level_up.new_level) == (0, 2)
        assert (await wallet(engine, ALICE))[1:] == (255, 2)


async def test_level_up_from_a_follow_points_at_the_follow_event(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(db_path, clock, economy={"earn": {"follow": {"xp": 500}}}) as engine:
        follow = events.follow(ALICE)
        earned = await engine.earning.handle(follow)

        assert earned.level_up is not None
        [level_up] = await rows(engine, EVENTS, EVENTS.c.kind == "level_up")
        assert level_up.cause_ref == follow.ref


# --------------------------------------------------------------------------------- restarts


async def test_balances_survive_a_restart(db_path: Path, clock: FakeClock) -> None:
    async with engine_with(db_path, clock) as engine:
        await engine.ledger.grant(ALICE, 1234, reason="bonus")

    async with engine_with(db_path, clock) as engine:
        summary = await engine.wallets.summary(await engine.wallets.find("alice"))
        assert (summary.display_name, summary.points) == ("alice", 1234)
        await assert_verified(engine)


async def test_the_chat_cooldown_survives_a_restart(
    db_path: Path, clock: FakeClock, events: EventFactory
) -> None:
    async with engine_with(db_path, clock) as engine:
        assert paid(await engine.earning.handle(events.chat(ALICE))) == (1, 1, None)

    clock.advance(10)
    async with engine_with(db_path, clock) as engine:
        assert paid(await engine.earning.handle(events.chat(ALICE))) == (0, 0, "cooldown")
        clock.advance(51)
        assert paid(await engine.earning.handle(events.chat(ALICE))) == (1, 1, None)
        assert await points(engine, ALICE) == 2


async def test_a_command_cooldown_survives_a_restart(db_path: Path, clock: FakeClock) -> None:
    async with engine_with(db_path, clock) as engine:
        await engine.cooldowns.reserve((ALICE, "tts", timedelta(seconds=30)))
        user_id = await engine.wallets.find("alice")

    clock.advance(12)
    async with engine_with(db_path, clock) as engine:
        with pytest.raises(OnCooldown) as refused:
            await engine.cooldowns.reserve((ALICE, "tts", timedelta(seconds=30)))
        assert (refused.value.key, refused.value.remaining) == ("tts", 18.0)
        assert await engine.cooldowns.remaining(user_id, "tts") == 18.0

        await engine.cooldowns.reserve((BOB, "tts", timedelta(seconds=30)))  # per viewer
        await engine.cooldowns.reserve((ALICE, "song", timedelta(seconds=30)))  # per key

        clock.advance(18)
        assert await engine.cooldowns.remaining(user_id, "tts") == 0.0
        await engine.cooldowns.reserve((ALICE, "tts", timedelta(seconds=30)))
        assert await engine.cooldowns.remaining(user_id, "tts") == 30.0


async def test_a_global_cooldown_holds_for_everyone(engine: Engine, clock: FakeClock) -> None:
    await engine.cooldowns.reserve((None, "raffle", timedelta(minutes=2)))

    with pytest.raises(OnCooldown) as refused:
        await engine.cooldowns.reserve((None, "raffle", timedelta(minutes=2)))
    assert refused.value.remaining == 120.0

    clock.advance(50)
    assert await engine.cooldowns.remaining(None, "raffle") == 70.0
    with pytest.raises(OnCooldown) as refused:
        await engine.cooldowns.reserve((None, "raffle", timedelta(minutes=2)))
    assert refused.value.remaining == 70.0

    await engine.cooldowns.reserve((ALICE, "raffle", timedelta(minutes=2)))  # a viewer's own scope
    clock.advance(70)
    await engine.cooldowns.reserve((None, "raffle", timedelta(minutes=2)))
    assert await engine.cooldowns.remaining(None, "raffle") == 120.0
