"""``pixelbot.db.verify`` on a real database: quiet when the books balance, and precise (which
check, which user) when someone tampered with them behind the engine's back.

A healthy database is built once through the real engine (chat awards with XP and a level
reward, grants, spends, a refund, a transfer, a moderator adjust); every tampering test works on
its own copy of that file, made with SQLite's online backup API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.db.engine import Database
from pixelbot.db.verify import VerifyReport, Violation, verify
from pixelbot.testing import EventFactory, make_config, open_test_engine, viewer
from pixelbot.testing_db import database_url
from pixelbot.testing_db import query as run_sql

ALICE, BOB, CAROL = viewer("alice"), viewer("bob"), viewer("carol")

# Chat pays 1 point and 60 XP, so alice's second paid message takes her to level 2 (100 XP),
# whose reward pays 10 points.
ECONOMY = {"earn": {"chat": {"points": 1, "xp": 60, "cooldown": "60s"}}}
XP = {"level_rewards": {2: {"points": 10, "message": "{user} reached level {level}!"}}}

ALICE_POINTS = 1 + 1 + 10 + 100 - 30 + 30 - 20 - 15  # = 77
BOB_POINTS = 1 + 15
CAROL_POINTS = 40 - 5


@dataclass(frozen=True)
class Healthy:
    path: Path
    alice: int
    bob: int
    carol: int


async def _build(path: Path) -> Healthy:
    clock = FakeClock(utc(2026, 3, 1, 20, 0, 0))
    events = EventFactory(clock)
    config = make_config(path, economy=ECONOMY, xp=XP)
    async with open_test_engine(config, clock) as engine:
        await _play(engine, clock, events)
        alice = await engine.wallets.find("alice")
        bob = await engine.wallets.find("bob")
        carol = await engine.wallets.find("carol")
    # The redeem queue's rows, as it writes them: a done redeem that stays paid, a failed one
    # that was refunded, and a free one still waiting.
    at = "'2026-03-01 20:01:01'"
    sql(
        path,
        "INSERT INTO queue_items (kind, status, priority, payload, user_id, redeem_key,"
        " cost, charge_ref, attempts, created_at) VALUES"
        f" ('redeem', 'done', 0, '{{}}', ?, 'hydrate', 20, 'redeem:2', 1, {at}),"
        f" ('redeem', 'failed', 0, '{{}}', ?, 'sfx', 30, 'redeem:1', 3, {at}),"
        f" ('redeem', 'pending', 0, '{{}}', ?, 'hello', 0, NULL, 0, {at})",
        (alice, alice, bob),
    )
    return Healthy(path, alice, bob, carol)


async def _play(engine: Engine, clock: FakeClock, events: EventFactory) -> None:
    ledger = engine.ledger
    first = await engine.earning.handle(events.chat(ALICE))
    assert (first.points, first.xp, first.level_up) == (1, 60, None)
    await engine.earning.handle(events.chat(BOB))
    clock.advance(61)
    second = await engine.earning.handle(events.chat(ALICE))
    assert second.level_up is not None
    assert second.level_up.new_level == 2
    assert (await engine.earning.handle(events.chat(ALICE))).skipped == "cooldown"

    await ledger.grant(ALICE, 100, reason="bonus", ref="bonus:alice", actor="mod")
    assert (await ledger.grant(ALICE, 100, reason="bonus", ref="bonus:alice")).duplicate
    await ledger.grant(CAROL, 40, reason="bonus", actor="mod")
    await ledger.spend(ALICE, 30, reason="redeem", ref="redeem:1")
    refund = await ledger.refund("redeem:1", reason="redeem_failed")
    assert refund is not None
    assert await ledger.refund("redeem:1") is None  # exactly once
    await ledger.spend(ALICE, 20, reason="redeem", ref="redeem:2")
    await ledger.transfer(ALICE, BOB, 15)
    await ledger.adjust(CAROL, -5, actor="mod")


@pytest.fixture
async def healthy(db_path: Path) -> Healthy:
    """A database after a short, healthy stream (built per test, on the test's backend)."""
    return await _build(db_path)


@pytest.fixture
def copy(healthy: Healthy) -> Healthy:
    """The healthy database, free to tamper with (each test builds its own)."""
    return healthy


def sql(path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Raw SQL, as a careless script or a hand edit would do it."""
    query(path, statement, params)


def query(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return run_sql(database_url(path), statement, *params)


async def run_verify(path: Path) -> VerifyReport:
    db = Database(database_url(path))
    try:
        return await verify(db)
    finally:
        await db.dispose()


def checks(report: VerifyReport) -> list[tuple[str, int | None]]:
    return [(v.check, v.user_id) for v in report.violations]


# ----------------------------------------------------------------------------- healthy


async def test_healthy_database_verifies(healthy: Healthy) -> None:
    report = await run_verify(healthy.path)
    assert report.violations == []
    assert report.ok
    assert report.counts == {
        "users": 3,
        # alice: 2 chats, level reward, bonus, 2 spends, refund, transfer out; bob: chat,
        # transfer in; carol: bonus, adjust
        "transactions": 12,
        "xp_transactions": 3,
        "queue_items": 3,
    }
    assert report.as_dict() == {"ok": True, "counts": report.counts, "violations": []}
    json.dumps(report.as_dict())  # what `db verify --json` prints


def test_healthy_database_balances(healthy: Healthy) -> None:
    """The scenario did what it says, so the tampering tests below start from known numbers."""
    rows = query(healthy.path, "SELECT id, points, xp, level FROM users ORDER BY id")
    assert rows == [
        (healthy.alice, ALICE_POINTS, 120, 2),
        (healthy.bob, BOB_POINTS, 60, 1),
        (healthy.carol, CAROL_POINTS, 0, 1),
    ]
    refunds = query(
        healthy.path,
        "SELECT user_id, amount, refund_of FROM transactions WHERE refund_of IS NOT NULL",
    )
    assert refunds == [(healthy.alice, 30, "redeem:1")]


async def test_empty_database_verifies(tmp_path: Path) -> None:
    config = make_config(tmp_path / "empty.db")
    async with open_test_engine(config):
        pass
    report = await run_verify(tmp_path / "empty.db")
    assert report.ok
    assert report.counts == {"users": 0, "transactions": 0, "xp_transactions": 0, "queue_items": 0}


# ----------------------------------------------------------------------------- tampering


async def test_changed_wallet_points_are_a_points_balance_violation(copy: Healthy) -> None:
    sql(copy.path, "UPDATE users SET points = points + 7 WHERE id = ?", (copy.alice,))
    report = await run_verify(copy.path)
    assert not report.ok
    assert report.violations == [
        Violation(
            "points_balance",
            f"wallet has {ALICE_POINTS + 7} points, ledger sums to {ALICE_POINTS}, "
            f"last balance_after is {ALICE_POINTS}",
            copy.alice,
        )
    ]


async def test_wallet_points_without_any_ledger_are_a_violation(copy: Healthy) -> None:
    sql(
        copy.path,
        "INSERT INTO users (display_name, points, xp, level, rewarded_level, created_at,"
        " updated_at) VALUES ('mallory', 500, 0, 1, 1, '2026-03-01 20:00:00',"
        " '2026-03-01 20:00:00')",
    )
    (mallory,) = query(copy.path, "SELECT id FROM users WHERE display_name = 'mallory'")[0]
    report = await run_verify(copy.path)
    assert report.violations == [
        Violation(
            "points_balance",
            "wallet has 500 points, ledger sums to 0, last balance_after is 0",
            mallory,
        )
    ]


async def test_changed_middle_balance_after_breaks_the_points_chain(copy: Healthy) -> None:
    rows = query(
        copy.path,
        "SELECT id, amount, balance_after FROM transactions WHERE user_id = ? ORDER BY id",
        (copy.alice,),
    )
    assert len(rows) == 8
    middle, following = rows[3], rows[4]
    previous_after = rows[2][2]
    sql(
        copy.path,
        "UPDATE transactions SET balance_after = balance_after + 1 WHERE id = ?",
        (middle[0],),
    )

    report = await run_verify(copy.path)
    # The tampered row no longer follows from its predecessor, and its successor no longer
    # follows from it; the wallet still equals the sum and the (untouched) last row.
    assert report.violations == [
        Violation(
            "points_chain",
            f"ledger row {middle[0]}: balance_after {middle[2] + 1} != previous "
            f"{previous_after} + amount {middle[1]}",
            copy.alice,
        ),
        Violation(
            "points_chain",
            f"ledger row {following[0]}: balance_after {following[2]} != previous "
            f"{middle[2] + 1} + amount {following[1]}",
            copy.alice,
        ),
    ]


async def test_changed_last_balance_after_is_a_balance_and_chain_violation(copy: Healthy) -> None:
    (last_id,) = query(
        copy.path, "SELECT max(id) FROM transactions WHERE user_id = ?", (copy.carol,)
    )[0]
    sql(copy.path, "UPDATE transactions SET balance_after = 99 WHERE id = ?", (last_id,))
    report = await run_verify(copy.path)
    assert checks(report) == [("points_balance", copy.carol), ("points_chain", copy.carol)]
    assert report.violations[0].detail == (
        f"wallet has {CAROL_POINTS} points, ledger sums to {CAROL_POINTS}, last balance_after is 99"
    )


async def test_changed_ledger_amount_is_caught(copy: Healthy) -> None:
    """Editing an amount alone: the sum and the chain disagree with the wallet."""
    (first_id,) = query(
        copy.path, "SELECT min(id) FROM transactions WHERE user_id = ?", (copy.bob,)
    )[0]
    sql(copy.path, "UPDATE transactions SET amount = 5 WHERE id = ?", (first_id,))
    report = await run_verify(copy.path)
    assert checks(report) == [("points_balance", copy.bob), ("points_chain", copy.bob)]


async def test_wrong_wallet_xp_is_an_xp_balance_violation(copy: Healthy) -> None:
    sql(copy.path, "UPDATE users SET xp = 1000 WHERE id = ?", (copy.bob,))
    report = await run_verify(copy.path)
    assert report.violations == [
        Violation(
            "xp_balance", "wallet has 1000 xp, ledger sums to 60, last xp_after is 60", copy.bob
        )
    ]


async def test_changed_xp_after_breaks_the_xp_chain(copy: Healthy) -> None:
    (first_id,) = query(
        copy.path, "SELECT min(id) FROM xp_transactions WHERE user_id = ?", (copy.alice,)
    )[0]
    sql(copy.path, "UPDATE xp_transactions SET xp_after = 61 WHERE id = ?", (first_id,))
    report = await run_verify(copy.path)
    assert checks(report) == [("xp_chain", copy.alice), ("xp_chain", copy.alice)]


async def test_refund_of_a_different_amount_is_a_refund_violation(copy: Healthy) -> None:
    """Alice's 20-point charge 'redeem:2' refunded with 15: the ledger and wallet stay consistent
    (sum, chain), only the refund rule is broken."""
    new_balance = ALICE_POINTS + 15
    sql(
        copy.path,
        "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, refund_of,"
        " created_at) VALUES (?, 15, ?, 'refund', 'refund', 'refund:redeem:2', 'redeem:2',"
        " '2026-03-01 21:00:00')",
        (copy.alice, new_balance),
    )
    sql(copy.path, "UPDATE users SET points = ? WHERE id = ?", (new_balance, copy.alice))
    (refund_id,) = query(copy.path, "SELECT id FROM transactions WHERE ref = 'refund:redeem:2'")[0]

    report = await run_verify(copy.path)
    assert report.violations == [
        Violation(
            "refund",
            f"refund row {refund_id} of 15 does not match its charge 'redeem:2' "
            f"(-20 by user {copy.alice})",
            copy.alice,
        )
    ]


async def test_refund_to_another_person_is_a_refund_violation(copy: Healthy) -> None:
    sql(
        copy.path,
        "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, refund_of,"
        " created_at) VALUES (?, 20, ?, 'refund', 'refund', 'refund:redeem:2', 'redeem:2',"
        " '2026-03-01 21:00:00')",
        (copy.carol, CAROL_POINTS + 20),
    )
    sql(copy.path, "UPDATE users SET points = points + 20 WHERE id = ?", (copy.carol,))
    report = await run_verify(copy.path)
    assert checks(report) == [("refund", copy.carol)]


async def test_failed_queue_item_without_refund_is_a_queue_refund_violation(
    copy: Healthy,
) -> None:
    sql(
        copy.path,
        "INSERT INTO queue_items (kind, status, priority, payload, user_id, redeem_key, cost,"
        " charge_ref, attempts, error, created_at) VALUES ('redeem', 'failed', 0, '{}', ?,"
        " 'hydrate', 20, 'redeem:2', 3, 'obs not reachable', '2026-03-01 21:00:00')",
        (copy.alice,),
    )
    (item_id,) = query(copy.path, "SELECT max(id) FROM queue_items")[0]
    report = await run_verify(copy.path)
    assert report.violations == [
        Violation(
            "queue_refund",
            f"queue item {item_id} is failed but its charge 'redeem:2' was never refunded",
            copy.alice,
        )
    ]
    assert report.counts["queue_items"] == 4


async def test_cancelled_queue_item_without_refund_is_a_violation(copy: Healthy) -> None:
    sql(copy.path, "UPDATE queue_items SET status = 'cancelled' WHERE charge_ref = 'redeem:2'")
    report = await run_verify(copy.path)
    assert checks(report) == [("queue_refund", copy.alice)]


async def test_every_violation_is_reported_at_once(copy: Healthy) -> None:
    sql(copy.path, "UPDATE users SET points = points + 1 WHERE id = ?", (copy.carol,))
    sql(copy.path, "UPDATE users SET xp = xp + 1 WHERE id = ?", (copy.alice,))
    sql(copy.path, "UPDATE queue_items SET status = 'failed' WHERE charge_ref = 'redeem:2'")
    report = await run_verify(copy.path)
    assert sorted(checks(report)) == [
        ("points_balance", copy.carol),
        ("queue_refund", copy.alice),
        ("xp_balance", copy.alice),
    ]
    assert report.as_dict()["ok"] is False


async def test_wrong_wallet_level_is_a_violation(copy: Healthy) -> None:
    assert query(
        copy.path,
        "SELECT level_after FROM xp_transactions WHERE user_id = ? ORDER BY id DESC LIMIT 1",
        (copy.alice,),
    ) == [(2,)]
    sql(copy.path, "UPDATE users SET level = 7 WHERE id = ?", (copy.alice,))
    report = await run_verify(copy.path)
    assert not report.ok
    assert {v.user_id for v in report.violations} == {copy.alice}
