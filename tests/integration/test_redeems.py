"""Redeems at the engine level: charge + queue item in one operation, under concurrency."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.db.models import QueueItem, Transaction
from pixelbot.db.verify import verify
from pixelbot.economy.redeems import Redemption
from pixelbot.errors import InsufficientFunds, LimitReached, OnCooldown, RedeemDisabled
from pixelbot.events import Viewer
from pixelbot.testing import make_config, open_test_engine, viewer

ALICE = viewer("alice")
BOB = viewer("bob")
SPIN: dict[str, Any] = {"title": "Wheel", "cost": 10, "action": {"type": "wheel"}}


def config_with(db_path: Path, **redeem: Any) -> Config:
    return make_config(db_path, redeems={"spin": {**SPIN, **redeem}})


async def buy(engine: Any, who: Viewer, ref: str) -> Redemption:
    session_id, since = await engine.streams.window()
    result: Redemption = await engine.redeems.redeem(
        "spin",
        engine.catalog.get("spin"),
        who,
        None,
        ref=ref,
        stream_session_id=session_id,
        counts_since=since,
    )
    return result


async def counts(engine: Any) -> tuple[int, int]:
    async with engine.db.read() as conn:
        items = (await conn.execute(select(func.count()).select_from(QueueItem))).scalar_one()
        spends = (
            await conn.execute(select(func.count()).where(Transaction.kind == "spend"))
        ).scalar_one()
    return int(items), int(spends)


async def test_concurrent_redeems_never_pass_the_stream_limit_or_the_balance(
    db_path: Path, clock: FakeClock
) -> None:
    async with open_test_engine(config_with(db_path, max_per_stream=7), clock) as engine:
        await engine.ledger.grant(ALICE, 50, reason="test")  # enough for 5
        await engine.ledger.grant(BOB, 1000, reason="test")
        results = await asyncio.gather(
            *(buy(engine, ALICE if n % 2 else BOB, f"r{n}") for n in range(40)),
            return_exceptions=True,
        )
        bought = [r for r in results if isinstance(r, Redemption)]
        assert len(bought) == 7
        assert all(
            isinstance(r, LimitReached | InsufficientFunds) for r in results if r not in bought
        )
        assert await counts(engine) == (7, 7)
        alice = await engine.wallets.summary(await engine.wallets.find("alice"))
        bob = await engine.wallets.summary(await engine.wallets.find("bob"))
        assert alice.points + bob.points == 1050 - 70
        assert (await verify(engine.db)).ok


async def test_per_viewer_limit_and_a_new_stream_resets_it(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(config_with(db_path, max_per_user_per_stream=1), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        await engine.streams.go_live("console", "console")
        await buy(engine, ALICE, "a1")
        with pytest.raises(LimitReached) as refused:
            await buy(engine, ALICE, "a2")
        assert (refused.value.limit, refused.value.per_user) == (1, True)
        clock.advance(60)
        await engine.streams.go_offline()
        clock.advance(60)
        await engine.streams.go_live("console", "console")
        await buy(engine, ALICE, "a3")
        assert await counts(engine) == (2, 2)


async def test_a_refused_redeem_changes_nothing(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(config_with(db_path, cooldown="30s"), clock) as engine:
        await engine.ledger.grant(ALICE, 15, reason="test")
        await buy(engine, ALICE, "c1")
        with pytest.raises(OnCooldown) as cooling:
            await buy(engine, ALICE, "c2")
        assert cooling.value.remaining == 30
        clock.advance(31)
        with pytest.raises(InsufficientFunds) as short:
            await buy(engine, ALICE, "c3")
        assert (short.value.balance, short.value.cost) == (5, 10)
        assert await counts(engine) == (1, 1)
        # the refused attempt did not start the cooldown either
        await engine.ledger.grant(ALICE, 5, reason="test")
        await buy(engine, ALICE, "c4")


async def test_the_same_request_twice_charges_once(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(config_with(db_path), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        first, again = await asyncio.gather(buy(engine, ALICE, "same"), buy(engine, ALICE, "same"))
        assert {first.duplicate, again.duplicate} == {False, True}
        assert await counts(engine) == (1, 1)


async def test_queue_item_names_its_charge_and_refund_returns_it(
    db_path: Path, clock: FakeClock
) -> None:
    async with open_test_engine(config_with(db_path), clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        bought = await buy(engine, ALICE, "redeem:x")
        [pending] = await engine.queue.pending()
        assert pending.id == bought.item_id
        assert (pending.kind, pending.cost, pending.redeem_key) == ("wheel", 10, "spin")
        async with engine.db.read() as conn:
            charge_ref = (
                await conn.execute(
                    select(QueueItem.charge_ref).where(QueueItem.id == bought.item_id)
                )
            ).scalar_one()
        assert charge_ref == "redeem:x"
        refund = await engine.ledger.refund(charge_ref)
        assert refund is not None and refund.balance == 100


async def test_moderator_toggles_survive_a_restart(db_path: Path, clock: FakeClock) -> None:
    config = config_with(db_path)
    async with open_test_engine(config, clock) as engine:
        await engine.catalog.set_enabled("spin", False)
    async with open_test_engine(config, clock) as engine:
        assert engine.catalog.is_enabled("spin") is False
        with pytest.raises(RedeemDisabled):
            engine.catalog.require_enabled("spin")
        await engine.catalog.set_enabled("spin", True)
    async with open_test_engine(config, clock) as engine:
        assert engine.catalog.is_enabled("spin") is True


class _Crashes:
    """An operation with a bug: it raises StopIteration, which futures refuse to carry."""

    def needs(self, needs: Any) -> None:
        pass

    def apply(self, batch: Any) -> None:
        raise StopIteration


async def test_the_writer_outlives_a_broken_operation(db_path: Path, clock: FakeClock) -> None:
    async with open_test_engine(config_with(db_path), clock) as engine:
        with pytest.raises(RuntimeError, match="StopIteration"):
            await engine.writer.submit(_Crashes())
        entry = await engine.ledger.grant(ALICE, 5, reason="test")
        assert entry.balance == 5


async def test_verify_flags_a_failed_item_that_cost_points_but_names_no_charge(
    db_path: Path, clock: FakeClock
) -> None:
    async with open_test_engine(config_with(db_path), clock) as engine:
        await engine.ledger.grant(ALICE, 5, reason="test")
        async with engine.db.write() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO queue_items (kind, status, priority, payload, user_id, cost, attempts,"
                " created_at) VALUES ('tts', 'failed', 0, '{}', 1, 25, 1, '2026-03-01 20:00:00')"
            )
        report = await verify(engine.db)
        assert [(v.check, v.detail) for v in report.violations] == [
            ("queue_refund", "queue item 1 is failed, cost points and names no charge")
        ]
