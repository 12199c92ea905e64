"""Every rule of a tick, for many viewers at once, on both backends (the tick is worked out
inside the database, ``payouts_sql.py``), and on each backend the set-based way and the
row-by-row one (``rows_in_python``) write exactly the same rows for the same ticks."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.models import Base
from pixelbot.economy import payouts_sql
from pixelbot.economy.payouts import Award, PaidTick, Payouts
from pixelbot.errors import UnknownViewer
from pixelbot.events import Viewer
from pixelbot.testing import assert_verified, balance_of, make_config, open_test_engine, viewer
from pixelbot.testing_db import Backend

TRANSACTIONS = Base.metadata.tables["transactions"]
XP_TRANSACTIONS = Base.metadata.tables["xp_transactions"]
EVENTS = Base.metadata.tables["events"]
START = utc(2026, 3, 1, 20, 0, 0)

# The default curve: level 2 at 100 XP, level 3 at 448, level 4 at 1170.
LEVEL_2, LEVEL_3 = 100, 448


def rules_config(path: Path) -> Config:
    return make_config(
        path,
        economy={"starting_points": 10, "max_balance": 100},
        xp={
            "level_rewards": {
                2: {"points": 20, "message": "{user} is level {level}!"},
                3: {"points": 50, "message": "{user} made level {level}!"},
            }
        },
    )


async def ledger_of(engine: Engine, who: Viewer) -> list[tuple[Any, ...]]:
    user_id = await engine.wallets.find_identity(who)
    async with engine.db.read() as conn:
        rows = await conn.execute(
            select(
                TRANSACTIONS.c.kind,
                TRANSACTIONS.c.reason,
                TRANSACTIONS.c.amount,
                TRANSACTIONS.c.balance_after,
            )
            .where(TRANSACTIONS.c.user_id == user_id)
            .order_by(TRANSACTIONS.c.id)
        )
        return [tuple(row) for row in rows]


async def xp_of(engine: Engine, who: Viewer) -> list[tuple[Any, ...]]:
    user_id = await engine.wallets.find_identity(who)
    async with engine.db.read() as conn:
        rows = await conn.execute(
            select(
                XP_TRANSACTIONS.c.amount,
                XP_TRANSACTIONS.c.xp_after,
                XP_TRANSACTIONS.c.level_after,
                XP_TRANSACTIONS.c.ref,
            )
            .where(XP_TRANSACTIONS.c.user_id == user_id)
            .order_by(XP_TRANSACTIONS.c.id)
        )
        return [tuple(row) for row in rows]


async def test_a_tick_pays_by_every_rule(db_path: Path) -> None:
    near_cap, at_cap, climber, jumper = (viewer(n) for n in ("near", "full", "climb", "jump"))
    newbie, quiet = viewer("newbie"), viewer("quiet")
    alice, alice_dc = viewer("alice"), viewer("alice_dc", platform="discord")
    async with open_test_engine(rules_config(db_path), FakeClock(START)) as engine:
        # Before the tick (each starts with 10 welcome points):
        await engine.ledger.grant(near_cap, 85, reason="bonus")  # 95
        await engine.ledger.grant(at_cap, 90, reason="bonus")  # 100, the cap
        first = await Payouts(engine.writer).pay_tick(
            1, 1, [Award(climber, 0, LEVEL_2 - 1), Award(jumper, 0, 1)]
        )
        assert first.viewers == 2 and first.level_ups == ()
        await engine.ledger.grant(jumper, 60, reason="bonus")  # 70
        await engine.ledger.grant(alice, 1, reason="hello")  # 11
        code = (await engine.links.create_code(alice)).code
        await engine.links.link(alice_dc, code)  # alice_dc now pays into alice's wallet

        paid = await Payouts(engine.writer).pay_tick(
            1,
            2,
            [
                Award(near_cap, 10, 1),  # 95 + 10 is capped: 5 paid
                Award(at_cap, 10, 1),  # nothing fits: XP only
                Award(climber, 5, 1),  # reaches level 2: + 20
                Award(jumper, 5, LEVEL_3),  # level 1 to 3: 75 + 20 = 95, then 5 of 50 fit
                Award(newbie, 5, LEVEL_2),  # new: 10 welcome + 5, level 2: + 20
                Award(quiet, 0, 0),  # nothing to pay: no wallet either
                Award(alice, 5, 1),
                Award(alice_dc, 10, 2),  # the same wallet: the better award, once
            ],
        )
        assert (paid.viewers, paid.points, paid.xp) == (
            6,
            5 + 0 + 5 + 5 + 5 + 10,
            1 + 1 + 1 + LEVEL_3 + LEVEL_2 + 2,
        )
        assert [up.announcement() for up in paid.level_ups] == [
            "climb is level 2!",
            "jump made level 3!",  # (one level-up: both rewards, the top level's message)
            "newbie is level 2!",
        ]
        assert await balance_of(engine, near_cap) == 100
        assert await balance_of(engine, at_cap) == 100
        assert await balance_of(engine, climber) == 10 + 5 + 20
        assert await balance_of(engine, jumper) == 100
        assert await balance_of(engine, newbie) == 35
        assert await balance_of(engine, alice_dc) == 11 + 10 + 10  # (+ its welcome, moved)
        with pytest.raises(UnknownViewer):
            await engine.wallets.find_identity(quiet)

        assert (await ledger_of(engine, jumper))[-3:] == [
            ("earn", "watch", 5, 75),
            ("earn", "level_reward", 20, 95),
            ("earn", "level_reward", 5, 100),
        ]
        assert await ledger_of(engine, newbie) == [
            ("grant", "welcome", 10, 10),
            ("earn", "watch", 5, 15),
            ("earn", "level_reward", 20, 35),
        ]
        assert (await ledger_of(engine, at_cap))[-1] == ("grant", "bonus", 90, 100)
        assert (await xp_of(engine, at_cap)) == [(1, 1, 1, "payout:1:2:twitch:id-full")]
        assert (await xp_of(engine, jumper))[-1] == (
            LEVEL_3,
            LEVEL_3 + 1,
            3,
            "payout:1:2:twitch:id-jump",
        )
        assert (await xp_of(engine, climber))[-1] == (1, LEVEL_2, 2, "payout:1:2:twitch:id-climb")
        assert (await xp_of(engine, alice))[-1][-1] == "payout:1:2:discord:id-alice_dc"
        async with engine.db.read() as conn:
            level_ups = await conn.execute(
                select(EVENTS.c.cause_ref, EVENTS.c.payload)
                .where(EVENTS.c.kind == "level_up")
                .order_by(EVENTS.c.id)
            )
            assert [tuple(row) for row in level_ups] == [
                ("payout:1:2:twitch:id-climb", {"from": 1, "to": 2}),
                ("payout:1:2:twitch:id-jump", {"from": 1, "to": 3}),
                ("payout:1:2:twitch:id-newbie", {"from": 1, "to": 2}),
            ]
        await assert_verified(engine)

        # A level reward is paid once: the same level reached again pays nothing.
        again = await Payouts(engine.writer).pay_tick(1, 3, [Award(climber, 0, 1)])
        assert again.level_ups == () and await balance_of(engine, climber) == 35


async def test_a_tick_of_more_viewers_than_a_statement_may_have_parameters(db_path: Path) -> None:
    """asyncpg refuses a statement with more than 32,767 parameters: the tick's lookup of its
    viewers' wallets sends them as one array (it failed outright at 32,767 viewers)."""
    crowd = [Award(viewer(f"c{n}"), 1, 1) for n in range(33_000)]
    async with open_test_engine(make_config(db_path), FakeClock(START)) as engine:
        paid = await Payouts(engine.writer).pay_tick(2, 1, crowd)
        assert (paid.viewers, paid.points) == (33_000, 33_000)
        assert await balance_of(engine, viewer("c32999")) == 1
        await assert_verified(engine)


# ------------------------------------------------------------ the two ways agree


def random_ticks(seed: int) -> tuple[list[Award], list[Award]]:
    """Two ticks of a few hundred viewers: caps, level-ups (some by several levels), new
    viewers in both, duplicates, awards of XP only or points only."""
    rng = random.Random(seed)
    pool = [viewer(f"v{n}", platform=rng.choice(("twitch", "discord"))) for n in range(300)]

    def tick(share: float) -> list[Award]:
        chosen = [v for v in pool if rng.random() < share]
        awards = [
            Award(
                v,
                rng.choice((0, 1, 5, 10, 40, 150)),
                rng.choice((0, 1, 3, 60, 99, 120, 500, 1500)),
            )
            for v in chosen
        ]
        awards += [Award(rng.choice(chosen), 5, 1) for _ in range(10)]  # a viewer listed twice
        rng.shuffle(awards)
        return awards

    return tick(0.5), tick(0.8)


RANDOM_REF = re.compile("[0-9a-f]{32,}")  # the grants' and links' own refs (uuids)


async def tables(engine: Engine) -> dict[str, list[str]]:
    """Every row of the tables a tick writes, as text, ids included (random refs blanked)."""
    found: dict[str, list[str]] = {}
    async with engine.db.read() as conn:
        for name in ("users", "identities", "transactions", "xp_transactions", "events"):
            table = Base.metadata.tables[name]
            rows = await conn.execute(select(table).order_by(table.c.id))
            found[name] = [RANDOM_REF.sub("<random>", repr(tuple(row))) for row in rows]
    return found


async def pay_both_ticks(
    path: Path, seed: int, *, rows_in_python: bool
) -> tuple[list[PaidTick], dict[str, list[str]]]:
    first, second = random_ticks(seed)
    linked = [viewer("ann")] + [viewer(f"ann_{p}", platform=p) for p in ("discord", "joystick")]
    async with open_test_engine(rules_config(path), FakeClock(START)) as engine:
        payouts = Payouts(engine.writer, rows_in_python=rows_in_python)
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(args[2])  # (conn, cursor, statement, ...)

        for hooked in engine.db.statement_engines():
            event.listen(hooked, "before_cursor_execute", record)
        await engine.ledger.grant(linked[0], 50, reason="bonus")
        for other in linked[1:]:
            code = (await engine.links.create_code(linked[0])).code
            await engine.links.link(other, code)
        paid = [await payouts.pay_tick(7, 1, first + [Award(v, 5, 1) for v in linked])]
        engine.clock.advance(300)
        # The linked wallet's best award comes last: it is paid where the wallet first shows.
        ann = [Award(linked[1], 40, 1), Award(linked[2], 40, 120)]
        paid.append(await payouts.pay_tick(7, 2, [Award(linked[0], 5, 1), *second, *ann]))
        # (each way really ran: the set-based one works in its TEMP table, the other never)
        assert any("payout_rows" in sql for sql in statements) is not rows_in_python
        await assert_verified(engine)
        return paid, await tables(engine)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_tick_in_sql_writes_the_rows_the_row_path_writes(
    tmp_path: Path, seed: int, db_backend: Backend
) -> None:
    if db_backend.name == "sqlite":
        assert payouts_sql.SQLITE_SUPPORTED, "this SQLite pays row by row: nothing to compare"
    in_sql, sql_rows = await pay_both_ticks(tmp_path / "sql.db", seed, rows_in_python=False)
    by_row, python_rows = await pay_both_ticks(tmp_path / "rows.db", seed, rows_in_python=True)
    assert in_sql == by_row
    assert sum(len(tick.level_ups) for tick in in_sql) > 5  # (the seeds do level viewers up)
    assert any("'level_reward'" in row for row in sql_rows["transactions"])
    for name, rows in python_rows.items():
        assert sql_rows[name] == rows, name
