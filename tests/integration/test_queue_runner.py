"""The queue runner on a real database: order, one at a time per kind, timeouts, failures and
skips refunded exactly once, pauses that outlive a restart, crash recovery, and the wheel.

Runner rules are tested with a small worker whose behaviour each item's text picks ("ok",
"fail", "crash", "hang", "block"); the real TTS and OBS workers have their own tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pixelbot.app import Engine
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.db.models import EventRow, QueueItem, Transaction, XpTransaction
from pixelbot.db.verify import verify
from pixelbot.economy.queue import INTERRUPTED, LEASE, Settled
from pixelbot.economy.redeems import queue_kind
from pixelbot.errors import ItemFailed, QueueFull
from pixelbot.events import Viewer
from pixelbot.queue.runner import BUG_MESSAGE, Outcome, QueueRunner
from pixelbot.queue.worker import Done, Job, Worker
from pixelbot.queue.workers.wheel import WheelWorker
from pixelbot.testing import make_config, open_test_engine, redeem_item, viewer

ALICE = viewer("alice")
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
    "fx": {"title": "Effect", "cost": 10, "action": {"type": "chat", "message": "o/"}},
    "spin": {"title": "Wheel", "cost": 100, "action": {"type": "wheel", "wheel": "main"}},
}
WHEEL = {
    "prizes": [
        {"name": "50 Points", "weight": 1, "points": 50},
        {"name": "500 XP", "weight": 1, "xp": 500},
        {"name": "Confetti", "weight": 1, "effect": "confetti"},
        {"name": "A compliment", "weight": 1, "message": "{user} is great"},
        {"name": "Nothing", "weight": 1},
    ]
}
EFFECTS = {"confetti": {"steps": [{"say": "confetti for {user}!"}]}}


class ScriptedWorker:
    """Does what the item's text says: ok, fail, crash, hang (forever), block (until released)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: list[int] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.closed = False

    async def perform(self, job: Job) -> Done:
        self.seen.append(job.item_id)
        self.started.set()
        match job.text:
            case "fail":
                raise ItemFailed("the effect broke")
            case "crash":
                raise RuntimeError("a bug")
            case "hang":
                await asyncio.Event().wait()
            case "block":
                await self.release.wait()
        return Done(f"#{job.item_id} ok", result={"text": job.text}, chat=(f"did {job.text}",))

    async def close(self) -> None:
        self.closed = True


class Harness:
    def __init__(self, engine: Engine, runner: QueueRunner, outcomes: list[Outcome]) -> None:
        self.engine = engine
        self.runner = runner
        self.outcomes = outcomes
        self.recovered: list[int] = []  # ids retried or refunded at start

    async def buy(self, key: str, text: str | None = None, who: Viewer = ALICE) -> int:
        engine = self.engine
        ref = f"redeem:{key}:{text}:{len(self.outcomes)}:{random.random()}"
        item_id = await redeem_item(engine, key, ref, who, text)
        self.runner.wake(queue_kind(engine.catalog.get(key).action.type))
        return item_id

    async def items(self) -> dict[int, tuple[str, str | None, Any]]:
        async with self.engine.db.read() as conn:
            rows = await conn.execute(
                select(QueueItem.id, QueueItem.status, QueueItem.error, QueueItem.result)
            )
            return {row[0]: (row[1], row[2], row[3]) for row in rows}

    async def balance(self, who: Viewer = ALICE) -> int:
        summary = await self.engine.wallets.summary(
            await self.engine.wallets.find(who.login, who.platform)
        )
        return int(summary.points)

    async def refunds(self) -> list[str | None]:
        async with self.engine.db.read() as conn:
            rows = await conn.execute(
                select(Transaction.refund_of).where(Transaction.kind == "refund")
            )
            return list(rows.scalars())

    def by_item(self) -> dict[int, Outcome]:
        return {outcome.item_id: outcome for outcome in self.outcomes}


@asynccontextmanager
async def running(
    config: Config,
    clock: FakeClock,
    workers: Callable[[Engine], dict[str, Worker]],
    *,
    timeouts: dict[str, float] | None = None,
    retry: bool = False,
) -> AsyncIterator[Harness]:
    outcomes: list[Outcome] = []

    async def report(outcome: Outcome) -> None:
        outcomes.append(outcome)

    def say_for(payload: dict[str, object]) -> Callable[[str], Any]:
        async def say(text: str) -> None:
            return None

        return say

    async with open_test_engine(config, clock) as engine:
        runner = QueueRunner(
            engine.queue,
            workers(engine),
            timeouts=timeouts or {},
            report=report,
            say_for=say_for,
            retry_on_restart=retry,
        )
        harness = Harness(engine, runner, outcomes)
        recovered = await runner.start()
        harness.recovered = recovered.retried + [s.item_id for s in recovered.failed]
        try:
            yield harness
        finally:
            await runner.stop()


@pytest.fixture
def config(db_path: Path) -> Config:
    return make_config(db_path, redeems=REDEEMS, wheels={"main": WHEEL}, effects=EFFECTS)


def scripted(*kinds: str) -> Callable[[Engine], dict[str, Worker]]:
    return lambda engine: {kind: ScriptedWorker(kind) for kind in kinds}


async def assert_books_balance(engine: Engine) -> None:
    report = await verify(engine.db)
    assert report.ok, report.violations


async def test_items_run_one_at_a_time_in_order_and_are_recorded(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, scripted("tts")) as h:
        await h.engine.ledger.grant(ALICE, 1000, reason="test")
        await h.runner.pause("tts")  # queue three, then let them go
        ids = [await h.buy("tts", f"ok{n}") for n in range(3)]
        await h.runner.resume("tts")
        await h.runner.drain()
        worker = h.runner.workers["tts"]
        assert isinstance(worker, ScriptedWorker)
        assert worker.seen == ids
        items = await h.items()
        assert [items[i] for i in ids] == [("done", None, {"text": f"ok{n}"}) for n in range(3)]
        assert [o.done.chat for o in h.outcomes if o.done] == [
            ("did ok0",),
            ("did ok1",),
            ("did ok2",),
        ]
        assert await h.balance() == 1000 - 3 * 25
        assert await h.refunds() == []


async def test_failures_and_crashes_are_refunded_once_and_the_queue_goes_on(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, scripted("tts")) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        await h.runner.pause("tts")
        failing, fine, crashing = [await h.buy("tts", text) for text in ("fail", "ok", "crash")]
        assert await h.balance() == 25
        await h.runner.resume("tts")
        await h.runner.drain()
        items = await h.items()
        assert items[failing][:2] == ("failed", "the effect broke")
        assert items[fine][0] == "done"
        assert items[crashing][:2] == ("failed", BUG_MESSAGE)
        outcomes = h.by_item()
        assert (outcomes[failing].settled.refunded, outcomes[crashing].settled.refunded) == (25, 25)
        assert await h.balance() == 75
        assert sorted(await h.refunds()) == await _charge_refs(h.engine, [failing, crashing])
        # settling again (a second report, a retry) changes nothing
        again = await h.engine.queue.fail(failing, "again")
        assert again.already_settled and again.refunded == 0
        assert await h.balance() == 75
        await assert_books_balance(h.engine)


async def _charge_refs(engine: Engine, ids: list[int]) -> list[str | None]:
    async with engine.db.read() as conn:
        rows = await conn.execute(select(QueueItem.charge_ref).where(QueueItem.id.in_(ids)))
        return sorted(rows.scalars())


async def test_a_stuck_item_times_out_and_never_holds_up_another_kind(
    config: Config, clock: FakeClock
) -> None:
    # (the effect is bought, claimed and finished, three writes, while the stuck item waits
    # out its timeout: 0.5 s left a busy server too little room to keep that order)
    async with running(config, clock, scripted("tts", "effect"), timeouts={"tts": 2.0}) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        stuck = await h.buy("tts", "hang")
        worker = h.runner.workers["tts"]
        assert isinstance(worker, ScriptedWorker)
        await asyncio.wait_for(worker.started.wait(), 5)
        effect = await h.buy("fx", "ok")
        after = await h.buy("tts", "ok")
        await h.runner.drain()
        order = [outcome.item_id for outcome in h.outcomes]
        assert order.index(effect) < order.index(stuck) < order.index(after)
        items = await h.items()
        assert items[stuck][:2] == ("failed", "it took longer than 2s")
        assert (items[effect][0], items[after][0]) == ("done", "done")
        assert await h.balance() == 100 - 10 - 25
        await assert_books_balance(h.engine)


async def test_skip_cancels_what_is_running_and_refunds_it(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, scripted("tts")) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        blocked = await h.buy("tts", "block")
        worker = h.runner.workers["tts"]
        assert isinstance(worker, ScriptedWorker)
        await asyncio.wait_for(worker.started.wait(), 5)
        waiting = await h.buy("tts", "ok")
        skipped = h.runner.skip("tts", by="modmin")
        assert skipped is not None and skipped.id == blocked
        await h.runner.drain()
        items = await h.items()
        assert items[blocked][:2] == ("cancelled", "skipped by modmin")
        assert items[waiting][0] == "done"
        outcome = h.by_item()[blocked]
        assert (outcome.settled.refunded, outcome.cancelled_by) == (25, "modmin")
        assert await h.balance() == 75
        assert h.runner.skip("tts") is None  # nothing is running now
        await assert_books_balance(h.engine)


async def test_once_the_bot_begins_to_stop_no_new_item_starts(
    config: Config, clock: FakeClock
) -> None:
    """The item in hand goes on; one that would start now waits for the next start instead of
    being cut (and refunded) by the stop a few seconds later."""
    workers = scripted("tts")
    async with running(config, clock, workers) as h:
        worker = h.runner.workers["tts"]
        assert isinstance(worker, ScriptedWorker)
        await h.engine.ledger.grant(ALICE, 1000, reason="test")
        first = await h.buy("tts", "block")
        await asyncio.wait_for(worker.started.wait(), 5)
        h.runner.stop_claiming()
        second = await h.buy("tts", "ok")  # (a chat line in hand queues one)
        worker.release.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # a hang guard (it was 2 s for a write on a busy server)
        while first not in h.by_item():
            assert loop.time() < deadline, "the first item never finished"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # (time for a wrong start of the second to show)
        assert worker.seen == [first]
        items = await h.items()
        assert (items[first][0], items[second][0]) == ("done", "pending")
    assert await h.refunds() == []  # nothing was cut


async def test_a_pause_outlives_a_restart(config: Config, clock: FakeClock) -> None:
    async with running(config, clock, scripted("tts")) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        await h.runner.pause("tts", by="modmin")
    async with running(config, clock, scripted("tts")) as h:
        assert h.runner.paused == {"tts"}
        item = await h.buy("tts", "ok")
        await h.runner.drain()
        assert (await h.items())[item][0] == "pending"
        await h.runner.resume("tts")
        await h.runner.drain()
        assert (await h.items())[item][0] == "done"
    async with running(config, clock, scripted("tts")) as h:
        assert h.runner.paused == set()


async def test_clearing_cancels_and_refunds_everything_waiting(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, scripted("tts", "effect")) as h:
        await h.engine.ledger.grant(ALICE, 200, reason="test")
        await h.runner.pause("tts")
        waiting = [await h.buy("tts", "ok") for _ in range(3)]
        settled = await h.runner.cancel_pending(
            await h.engine.queue.pending("tts"), reason="cleared", by="modmin"
        )
        assert sorted(s.item_id for s in settled) == waiting
        assert sum(s.refunded for s in settled) == 75
        assert await h.balance() == 200
        # a second clear finds nothing and refunds nothing
        assert await h.runner.cancel_pending(await h.engine.queue.pending("tts"), reason="x") == []
        assert len(await h.refunds()) == 3
        await assert_books_balance(h.engine)


async def test_a_full_queue_refuses_before_charging(config: Config, clock: FakeClock) -> None:
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 1000, reason="test")
        session_id, since = await engine.streams.window()

        async def buy(n: int) -> Any:
            return await engine.redeems.redeem(
                "tts",
                engine.catalog.get("tts"),
                ALICE,
                "hi",
                ref=f"r{n}",
                stream_session_id=session_id,
                counts_since=since,
                max_pending=2,
            )

        results = await asyncio.gather(*(buy(n) for n in range(5)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, QueueFull)]
        assert len(refused) == 3 and refused[0].limit == 2
        assert str(refused[0]) == "the tts queue is full (2 waiting), try again soon"
        summary = await engine.wallets.summary(await engine.wallets.find("alice", "twitch"))
        assert summary.points == 1000 - 2 * 25


@pytest.mark.parametrize("retry", [False, True])
async def test_items_a_crash_left_running_are_recovered(
    config: Config, clock: FakeClock, retry: bool
) -> None:
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        session_id, since = await engine.streams.window()
        await engine.redeems.redeem(
            "tts",
            engine.catalog.get("tts"),
            ALICE,
            "ok",
            ref="r1",
            stream_session_id=session_id,
            counts_since=since,
        )
        claimed = await engine.queue.claim("tts")  # ... and the bot dies mid-item
        assert claimed is not None
    clock.advance(LEASE)  # its lease runs out (a database other bots share waits for that)
    async with running(config, clock, scripted("tts"), retry=retry) as h:
        assert h.recovered == [claimed.id]
        await h.runner.drain()
        status = (await h.items())[claimed.id][0]
        if retry:
            assert status == "done" and await h.balance() == 75
            assert await h.refunds() == []
        else:
            assert status == "failed" and await h.balance() == 100
            assert await h.refunds() == ["r1"]
            # the viewer is told, like for any failure
            assert [(o.item_id, o.error, o.settled.refunded) for o in h.outcomes] == [
                (claimed.id, INTERRUPTED, 25)
            ]
        await assert_books_balance(h.engine)
    async with running(config, clock, scripted("tts"), retry=retry) as h:  # nothing twice
        assert h.recovered == []
        assert len(await h.refunds()) == (0 if retry else 1)


async def test_stopping_fails_and_refunds_the_running_item(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, scripted("tts")) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        item = await h.buy("tts", "hang")
        worker = h.runner.workers["tts"]
        assert isinstance(worker, ScriptedWorker)
        await asyncio.wait_for(worker.started.wait(), 5)
        await h.runner.stop()
        assert worker.closed
        assert (await h.items())[item][:2] == ("failed", "the bot stopped before it finished")
        assert await h.balance() == 100


def wheel_workers(seed: int) -> Callable[[Engine], dict[str, Worker]]:
    def build(engine: Engine) -> dict[str, Worker]:
        return {
            "wheel": WheelWorker(lambda: engine.config, random.Random(seed)),
            "effect": ScriptedWorker("effect"),
        }

    return build


async def spin_many(h: Harness, count: int) -> list[Outcome]:
    await h.runner.pause("wheel")
    for _ in range(count):
        await h.buy("spin")
    await h.runner.resume("wheel")
    await h.runner.drain()
    return [o for o in h.outcomes if o.kind == "wheel"]


async def test_wheel_prizes_are_paid_through_the_ledger_with_the_spin_as_reference(
    config: Config, clock: FakeClock
) -> None:
    async with running(config, clock, wheel_workers(7)) as h:
        await h.engine.ledger.grant(ALICE, 3000, reason="test")
        spins = await spin_many(h, 20)
        assert len(spins) == 20
        won = {o.done.result["prize"] for o in spins if o.done}
        assert won == {"50 Points", "500 XP", "Confetti", "A compliment", "Nothing"}
        async with h.engine.db.read() as conn:
            prize_points = list(
                await conn.execute(
                    select(Transaction.ref, Transaction.amount, Transaction.kind).where(
                        Transaction.reason.like("wheel:%")
                    )
                )
            )
            prize_xp = list(
                await conn.execute(
                    select(XpTransaction.ref, XpTransaction.amount).where(
                        XpTransaction.reason.like("wheel:%")
                    )
                )
            )
            logged = list(
                await conn.execute(select(EventRow.payload).where(EventRow.kind == "queue_done"))
            )
        points_spins = [o for o in spins if o.done and o.done.result["prize"] == "50 Points"]
        xp_spins = [o for o in spins if o.done and o.done.result["prize"] == "500 XP"]
        assert sorted(prize_points) == sorted(
            (f"queue:{o.item_id}:prize:0", 50, "grant") for o in points_spins
        )
        assert sorted(prize_xp) == sorted((f"queue:{o.item_id}:prize:0", 500) for o in xp_spins)
        assert all(o.settled.paid_points == 50 for o in points_spins)
        # every spin is auditable: the roll and the prize are on the item and in the log
        items = await h.items()
        for spin in spins:
            assert spin.done is not None
            result = items[spin.item_id][2]
            assert result == spin.done.result
            assert 0 <= result["roll"] < 1 and result["wheel"] == "main"
        assert sorted(p[0]["item"] for p in logged if p[0]["kind"] == "wheel") == sorted(
            o.item_id for o in spins
        )
        # an effect prize became a free effect item, performed by the effect worker
        confetti = [o for o in spins if o.done and o.done.result["prize"] == "Confetti"]
        follow_ups = [i for o in confetti for i in o.settled.follow_up_ids]
        assert len(follow_ups) == len(confetti) > 0
        assert all(items[i][0] == "done" for i in follow_ups)
        compliment = next(o for o in spins if o.done and o.done.result["prize"] == "A compliment")
        assert compliment.done is not None
        assert compliment.done.chat == (
            "alice is spinning the wheel!",
            "alice won A compliment!",
            "alice is great",
        )
        expected = 3000 - 20 * 100 + 50 * len(points_spins)
        assert await h.balance() == expected
        await assert_books_balance(h.engine)


async def test_the_same_seed_spins_the_same_prizes(db_path: Path, clock: FakeClock) -> None:
    results = []
    for run in range(2):
        path = db_path.with_name(f"run{run}.db")
        config = make_config(path, redeems=REDEEMS, wheels={"main": WHEEL}, effects=EFFECTS)
        async with running(config, clock, wheel_workers(2026)) as h:
            await h.engine.ledger.grant(ALICE, 1000, reason="test")
            spins = await spin_many(h, 8)
            results.append(
                [(o.done.result["roll"], o.done.result["prize"]) for o in spins if o.done]
            )
    assert results[0] == results[1] and len(results[0]) == 8


async def test_a_prize_stops_at_the_maximum_balance_and_the_spin_still_counts(
    db_path: Path, clock: FakeClock
) -> None:
    only_points = {"prizes": [{"name": "Jackpot", "points": 500}]}
    config = make_config(
        db_path,
        redeems=REDEEMS,
        wheels={"main": only_points},
        economy={"max_balance": 1000},
    )
    async with running(config, clock, wheel_workers(1)) as h:
        await h.engine.ledger.grant(ALICE, 1000, reason="test")
        (spin,) = await spin_many(h, 1)
        assert spin.settled.status == "done" and spin.settled.paid_points == 100
        assert await h.balance() == 1000
        await assert_books_balance(h.engine)


def test_settled_defaults_say_nothing_was_paid() -> None:
    settled = Settled(1, "done")
    assert (settled.paid_points, settled.paid_xp, settled.follow_up_ids) == (0, 0, ())


def wheel_without_effects(engine: Engine) -> dict[str, Worker]:
    """A wheel for which no effect can run (as when effects need OBS and OBS is off)."""
    return {"wheel": WheelWorker(lambda: engine.config, random.Random(3), lambda e: False)}


async def test_a_prize_that_cannot_be_given_now_is_left_off_the_wheel(
    db_path: Path, clock: FakeClock
) -> None:
    wheel = {
        "prizes": [
            {"name": "Confetti", "weight": 1000, "effect": "confetti"},
            {"name": "10 Points", "weight": 1, "points": 10},
        ]
    }
    config = make_config(db_path, redeems=REDEEMS, wheels={"main": wheel}, effects=EFFECTS)

    async with running(config, clock, wheel_without_effects) as h:
        await h.engine.ledger.grant(ALICE, 1000, reason="test")
        spins = await spin_many(h, 5)
        assert [o.done.result["prize"] for o in spins if o.done] == ["10 Points"] * 5
        assert all(o.done and o.done.result["left_off"] == ["Confetti"] for o in spins)
        assert all(o.done and o.done.result["prize_index"] == 1 for o in spins)


async def test_a_wheel_with_no_prize_that_can_be_given_fails_and_refunds(
    db_path: Path, clock: FakeClock
) -> None:
    wheel = {"prizes": [{"name": "Confetti", "effect": "confetti"}]}
    config = make_config(db_path, redeems=REDEEMS, wheels={"main": wheel}, effects=EFFECTS)

    async with running(config, clock, wheel_without_effects) as h:
        await h.engine.ledger.grant(ALICE, 100, reason="test")
        (spin,) = await spin_many(h, 1)
        assert spin.settled.status == "failed" and spin.settled.refunded == 100
        assert spin.error == "none of this wheel's prizes can be given right now"
        assert await h.balance() == 100
        await assert_books_balance(h.engine)
