"""What meets the economy writer stopped (a shutdown, or a start not finished): a real writer,
really stopped, on both backends.

A viewer hears a plain sentence (the bot is restarting), never the writer's own words, which
go to the log; nothing is charged. A channel-point redemption cannot be queued: it is refunded
on the platform. A queue item whose end meets the stop stays running and is settled once, at
the next start, and no other item is claimed meanwhile. The dashboard answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pixelbot.app.assembly import open_app
from pixelbot.clock import FakeClock
from pixelbot.commands.dispatcher import RESTARTING
from pixelbot.config import Config
from pixelbot.db.models import QueueItem, Transaction
from pixelbot.economy.earning import Earned
from pixelbot.economy.queue import LEASE
from pixelbot.errors import WriterStopped
from pixelbot.events import RewardRedemption, Viewer
from pixelbot.outcomes import OutcomeBus, Say
from pixelbot.queue.runner import Outcome, QueueRunner
from pixelbot.queue.worker import Done, Job
from pixelbot.testing import (
    EventFactory,
    FakePlatform,
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
    redeem_item,
)

ALICE = Viewer("twitch", "t-alice", "alice", "Alice")
BOB = Viewer("twitch", "t-bob", "bob", "Bob")
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
}
WAIT = 10.0


@pytest.fixture
def config(db_path: Path) -> Config:
    return make_config(
        db_path,
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={"starting_points": 100, "earn": {"chat": {"points": 0, "xp": 0}}},
        redeems=REDEEMS,
    )


class RewardsPlatform(FakePlatform):
    """A FakePlatform that settles channel-point rewards (as Twitch does), recording each."""

    def __init__(self) -> None:
        super().__init__("twitch")
        self.settled: list[tuple[str, str, bool]] = []

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None:
        self.settled.append((redeem, redemption_id, fulfilled))


async def test_a_command_that_meets_a_stopped_writer_hears_the_bot_is_restarting(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    twitch = FakePlatform("twitch")
    async with open_app(config, clock=clock, platforms=[twitch]) as app:
        on_twitch = EventFactory(clock, "twitch")
        await twitch.emit(on_twitch.chat(ALICE, "hello"))
        await twitch.emit(on_twitch.chat(BOB, "hello"))
        await app.engine.writer.stop()
        with caplog.at_level(logging.WARNING):
            # its own line cannot be logged either: the command still gets its answer
            await twitch.emit(on_twitch.chat(ALICE, "!give bob 5"))
            await twitch.emit(on_twitch.chat(ALICE, "!tts hello there"))
        assert twitch.texts() == [f"@Alice {RESTARTING}", f"@Alice {RESTARTING}"]
        assert not any("writer" in text for text in twitch.texts())
        # the log keeps the precise cause
        causes = [r.getMessage() for r in caplog.records if "did not run" in r.getMessage()]
        assert causes == [
            "!give did not run: the economy writer is not running (not started, or stopping)",
            "!tts did not run: the economy writer is not running (not started, or stopping)",
        ]
        await app.engine.writer.start()
        assert await balance_of(app.engine, ALICE) == 100  # nothing was charged
        assert await balance_of(app.engine, BOB) == 100
        async with app.engine.db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(QueueItem))).scalar() == 0
        await twitch.emit(on_twitch.chat(ALICE, "!give bob 5"))  # and it works again
        assert await balance_of(app.engine, BOB) == 105
        await assert_verified(app.engine)


def redemption(clock: FakeClock, event_id: str, redemption_id: str) -> RewardRedemption:
    return RewardRedemption(
        id=event_id,
        viewer=ALICE,
        reward="tts",
        redemption_id=redemption_id,
        text="hello",
        channel="main",
        platform="twitch",
        occurred_at=clock.now(),
    )


async def test_a_redemption_that_meets_a_stopped_writer_is_refunded_on_the_platform(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Logged on arrival, then the writer stops before it is queued. It cannot be queued, and a
    redelivery would stop at the event log as a duplicate, so it is CANCELED on the platform at
    once (which returns the viewer's channel points), without a record: the platform moves a
    redemption out of UNFULFILLED only once."""
    clock = FakeClock()
    twitch = RewardsPlatform()
    bus = OutcomeBus()
    said: list[str] = []

    async def keep(say: Say) -> None:
        said.append(say.text)

    bus.subscribe(keep, Say)
    async with open_app(config, clock=clock, platforms=[twitch], bus=bus) as app:
        redeem = app.engine.redeems.redeem

        async def stopping_first(*args: Any, **kwargs: Any) -> Any:
            await app.engine.writer.stop()  # the shutdown comes between the log and the queue
            return await redeem(*args, **kwargs)

        app.engine.redeems.redeem = stopping_first  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING):
            await twitch.emit(redemption(clock, "ev-1", "red-1"))
        assert twitch.settled == [("tts", "red-1", False)]  # CANCELED: the points go back
        assert said == ["your channel points are refunded: the bot is restarting"]
        assert any(
            "red-1" in r.getMessage() and "not queued" in r.getMessage() for r in caplog.records
        )
        app.engine.redeems.redeem = redeem  # type: ignore[method-assign]
        await app.engine.writer.start()
        await twitch.emit(redemption(clock, "ev-1", "red-1"))  # a redelivery: a duplicate
        async with app.engine.db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(QueueItem))).scalar() == 0
        assert twitch.settled == [("tts", "red-1", False)]  # settled once


async def test_a_redemption_that_comes_after_the_writer_stopped_is_refunded_and_told(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing of it can be logged: the operator hears it was not saved (no traceback), and it
    is CANCELED on the platform all the same."""
    clock = FakeClock()
    twitch = RewardsPlatform()
    async with open_app(config, clock=clock, platforms=[twitch]) as app:
        await app.engine.writer.stop()
        with caplog.at_level(logging.WARNING):
            earned = await twitch.emit(redemption(clock, "ev-2", "red-2"))
        assert isinstance(earned, Earned) and earned.skipped == "unsaved"
        assert twitch.settled == [("tts", "red-2", False)]
        notes = [r.getMessage() for r in caplog.records if "not saved" in r.getMessage()]
        assert len(notes) == 1 and "twitch:reward_redemption:ev-2" in notes[0]
        assert not any(r.exc_info for r in caplog.records)
        await app.engine.writer.start()


class Blocking:
    """A TTS worker that finishes each item once released."""

    kind = "tts"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def perform(self, job: Job) -> Done:
        self.started.set()
        await self.release.wait()
        return Done(f"#{job.item_id} spoken")

    async def close(self) -> None:
        return None


def _runner(engine: Any, worker: Blocking, outcomes: list[Outcome]) -> QueueRunner:
    async def report(outcome: Outcome) -> None:
        outcomes.append(outcome)

    def say_for(payload: dict[str, object]) -> Callable[[str], Any]:
        async def say(text: str) -> None:
            return None

        return say

    return QueueRunner(engine.queue, {"tts": worker}, timeouts={}, report=report, say_for=say_for)


async def test_an_item_whose_end_meets_a_stopped_writer_is_settled_once_at_the_next_start(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Its end could not be saved, and neither could failing it: it stays running (charged
    once), no "failing it instead" with a traceback, and the next start refunds it once."""
    clock = FakeClock()
    async with open_test_engine(config, clock) as engine:
        worker, outcomes = Blocking(), []
        runner = _runner(engine, worker, outcomes)
        await runner.start()
        try:
            item = await redeem_item(engine, "tts", "redeem:1", ALICE)
            waiting = await redeem_item(engine, "tts", "redeem:2", ALICE)
            runner.wake("tts")
            await asyncio.wait_for(worker.started.wait(), WAIT)
            await engine.writer.stop()
            with caplog.at_level(logging.WARNING):
                worker.release.set()
                for _ in range(int(WAIT / 0.01)):
                    if any("queue waits" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.01)
            waits = [r for r in caplog.records if "queue waits" in r.getMessage()]
            assert waits and "the economy writer" in waits[0].getMessage()
            assert not any("failing it instead" in r.getMessage() for r in caplog.records)
            assert outcomes == []  # nobody was told it ended: it did not, as far as saved
        finally:
            await runner.stop()
        async with engine.db.read() as conn:
            statuses = dict((await conn.execute(select(QueueItem.id, QueueItem.status))).all())
        # the next item was not claimed: it could have been performed but not recorded
        assert statuses == {item: "running", waiting: "pending"}
        assert await balance_of(engine, ALICE) == 50
        with pytest.raises(WriterStopped):
            await engine.queue.fail(item, "x")
        with pytest.raises(WriterStopped):
            await engine.queue.claim("tts")
        await engine.writer.start()
        await engine.queue.cancel(waiting, "a moderator")  # (refunded: 75)
    clock.advance(LEASE)
    async with open_test_engine(config, clock) as engine:
        for _ in range(2):  # recovered once, and only once
            outcomes = []
            runner = _runner(engine, Blocking(), outcomes)
            await runner.start()
            await runner.stop()
        async with engine.db.read() as conn:
            refunds = (
                await conn.execute(
                    select(Transaction.refund_of).where(Transaction.kind == "refund")
                )
            ).scalars()
            assert sorted(refunds) == ["redeem:1", "redeem:2"]
        assert await balance_of(engine, ALICE) == 100
        await assert_verified(engine)
