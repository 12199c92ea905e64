"""The queue's money path under races and stops: each test names a bug a review found (and
that was fixed) and states the behaviour a streamer needs.

Everything is real: SQLite through the engine and its writer, the QueueRunner, the app
assembly, the EffectWorker with the real ObsClient against the fake obs-websocket server. Only
the workers that stand in for TTS are small test doubles implementing the ``Worker`` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pixelbot.app import Engine
from pixelbot.app.assembly import open_app
from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.config.effects import ObsSettings
from pixelbot.db.models import QueueItem
from pixelbot.economy.queue import LEASE, ClaimedItem, QueueStore, process_owner
from pixelbot.events import MessageDeleted, Viewer
from pixelbot.integrations.obs import ObsClient
from pixelbot.queue.runner import BUG_MESSAGE, Outcome, QueueRunner
from pixelbot.queue.worker import Done, Job, Worker
from pixelbot.queue.workers.effect import EffectWorker, steps_from_payload
from pixelbot.testing import FakePlatform, make_config, open_test_engine, redeem_item, viewer
from tests.fakes.obs_server import FakeObs

ALICE = viewer("alice")
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
    "peek": {
        "title": "Peek",
        "cost": 10,
        "action": {
            "type": "obs",
            "do": "show_source",
            "scene": "Main",
            "source": "HydrateGif",
            "for": "1h",
        },
    },
}
SETTLE_SECONDS = 5.0  # generous: every wait below normally ends in milliseconds
_refs = itertools.count(1)


# ----------------------------------------------------------------------------- test doubles


class Gate:
    """A well-behaved worker: each item runs until ``release`` is set, or it is cancelled."""

    def __init__(self, kind: str, result: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.result = result or {}
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.seen: list[int] = []
        self.cancelled: list[int] = []

    async def perform(self, job: Job) -> Done:
        self.seen.append(job.item_id)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.item_id)
            raise
        return Done(f"#{job.item_id} ok", result=self.result)

    async def close(self) -> None:
        return None


class Stubborn(Gate):
    """A worker whose clean-up outlives a cancellation (until ``release``), as an OBS undo
    does while OBS is unreachable and the client backs off."""

    async def perform(self, job: Job) -> Done:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await self.release.wait()
            raise
        raise AssertionError("unreachable")


class SlowClaims(QueueStore):
    """The real store, pausing after a claim has committed (a busy disk, a slow database)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.writer, engine.db, engine.clock)
        self.claimed = asyncio.Event()
        self.go_on = asyncio.Event()

    async def claim(self, kind: str) -> ClaimedItem | None:
        item = await super().claim(kind)
        if item is not None:
            self.claimed.set()
            await self.go_on.wait()
        return item


# ----------------------------------------------------------------------------- harness


@dataclass
class Rig:
    engine: Engine
    runner: QueueRunner
    store: QueueStore
    outcomes: list[Outcome]

    async def status(self, item_id: int) -> tuple[str, str | None]:
        return await status(self.engine, item_id)

    async def balance(self, who: Viewer = ALICE) -> int:
        return await balance(self.engine, who)


async def status(engine: Engine, item_id: int) -> tuple[str, str | None]:
    async with engine.db.read() as conn:
        row = (
            await conn.execute(
                select(QueueItem.status, QueueItem.error).where(QueueItem.id == item_id)
            )
        ).one()
    return row[0], row[1]


async def balance(engine: Engine, who: Viewer = ALICE) -> int:
    summary = await engine.wallets.summary(await engine.wallets.find(who.login, who.platform))
    return int(summary.points)


async def buy(engine: Engine, key: str, text: str | None = None, **extra: Any) -> int:
    ref = f"redeem:review:{next(_refs)}"
    return await redeem_item(engine, key, ref, ALICE, text, channel="chan", **extra)


def _say_for(payload: dict[str, object]) -> Callable[[str], Any]:
    async def say(text: str) -> None:
        return None

    return say


@asynccontextmanager
async def running(
    config: Config,
    clock: FakeClock,
    workers: Callable[[Engine], dict[str, Worker]],
    *,
    store: Callable[[Engine], QueueStore] | None = None,
    retry: bool = False,
) -> AsyncIterator[Rig]:
    outcomes: list[Outcome] = []

    async def report(outcome: Outcome) -> None:
        outcomes.append(outcome)

    async with open_test_engine(config, clock) as engine:
        queue_store = engine.queue if store is None else store(engine)
        runner = QueueRunner(
            queue_store,
            workers(engine),
            timeouts={},
            report=report,
            say_for=_say_for,
            retry_on_restart=retry,
        )
        await runner.start()
        try:
            yield Rig(engine, runner, queue_store, outcomes)
        finally:
            await runner.stop(grace=0.1)


@pytest.fixture
def config(db_path: Path) -> Config:
    return make_config(db_path, redeems=REDEEMS)


async def _finished_within(task: asyncio.Task[None], seconds: float) -> bool:
    """Whether ``task`` ended within ``seconds``; if not, it is cancelled (and awaited)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


# ----------------------------------------------------------------------------- findings


async def test_clearing_leaves_alone_an_item_that_started_meanwhile(
    config: Config, clock: FakeClock
) -> None:
    worker = Gate("tts")
    async with running(config, clock, lambda engine: {"tts": worker}) as rig:
        await rig.engine.ledger.grant(ALICE, 100, reason="test")
        await rig.runner.pause("tts")
        item = await buy(rig.engine, "tts", "hello")
        listed = await rig.engine.queue.pending("tts")  # !clearqueue reads what waits ...
        await rig.runner.resume("tts")  # ... and meanwhile the loop starts that item
        await asyncio.wait_for(worker.started.wait(), SETTLE_SECONDS)

        settled = await rig.runner.cancel_pending(listed, reason="cleared", by="modmin")
        worker.release.set()
        await rig.runner.drain()

        assert [s.item_id for s in settled] == []  # "those that have not started meanwhile"
        assert await rig.status(item) == ("done", None)
        assert await rig.balance() == 75  # it was performed: no refund


async def test_deleting_the_message_stops_its_tts_while_it_is_spoken(
    config: Config, clock: FakeClock
) -> None:
    worker = Gate("tts")
    chat = FakePlatform("twitch", default_channel="chan")
    async with open_app(
        config, clock=clock, platforms=[chat], workers=lambda app: {"tts": worker}
    ) as app:
        engine = app.engine
        try:
            await engine.ledger.grant(ALICE, 100, reason="test")
            item = await buy(engine, "tts", "something awful", message_id="msg-1")
            app.queue.wake("tts")
            await asyncio.wait_for(worker.started.wait(), SETTLE_SECONDS)

            deleted = MessageDeleted(
                id="evt-delete", platform="twitch", occurred_at=clock.now(), message_id="msg-1"
            )
            await chat.emit(deleted)
            worker.release.set()  # had it not been stopped, it would finish now
            await app.queue.drain()

            assert worker.cancelled == [item]
            assert await status(engine, item) == ("cancelled", "the message was deleted")
            assert await balance(engine) == 100
            assert chat.texts()[-1] == (
                "@alice your TTS was cancelled (the message was deleted). Your 25 pixels are back."
            )
        finally:
            worker.release.set()


async def test_stopping_while_an_item_is_being_claimed_keeps_to_the_grace(
    config: Config, clock: FakeClock
) -> None:
    worker = Gate("tts")
    async with running(config, clock, lambda engine: {"tts": worker}, store=SlowClaims) as rig:
        assert isinstance(rig.store, SlowClaims)
        await rig.engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(rig.engine, "tts", "hello")
        rig.runner.wake("tts")
        await asyncio.wait_for(rig.store.claimed.wait(), SETTLE_SECONDS)

        stopping = asyncio.create_task(rig.runner.stop(grace=0.1))
        await asyncio.sleep(0)  # stop() has looked at what runs (nothing yet) and waits
        rig.store.go_on.set()  # the claim returns: the loop starts the item

        assert await _finished_within(stopping, 1.5), "stop() hung past its grace"
        state, _ = await rig.status(item)
        assert state in ("pending", "failed")  # never left 'running' by a clean stop
        assert await rig.balance() == (75 if state == "pending" else 100)


async def test_stop_keeps_to_its_grace_when_a_worker_is_slow_to_cancel(
    config: Config, clock: FakeClock
) -> None:
    worker = Stubborn("tts")
    async with running(config, clock, lambda engine: {"tts": worker}) as rig:
        await rig.engine.ledger.grant(ALICE, 100, reason="test")
        await buy(rig.engine, "tts", "hello")
        rig.runner.wake("tts")
        await asyncio.wait_for(worker.started.wait(), SETTLE_SECONDS)
        try:
            stopping = asyncio.create_task(rig.runner.stop(grace=0.1))
            assert await _finished_within(stopping, 1.5), "stop() hung past its grace"
        finally:
            worker.release.set()


async def test_an_item_whose_settling_fails_is_failed_and_refunded(
    config: Config, clock: FakeClock
) -> None:
    # A worker slip (a Path in the result) makes the commit fail; a locked database does too.
    worker = Gate("tts", result={"file": Path("data/tts/tts-1.wav")})
    worker.release.set()
    async with running(config, clock, lambda engine: {"tts": worker}) as rig:
        await rig.engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(rig.engine, "tts", "hello")
        await rig.runner.drain()

        assert await rig.status(item) == ("failed", BUG_MESSAGE)
        assert await rig.balance() == 100
        assert [o.item_id for o in rig.outcomes] == [item]  # and the viewer is told


async def test_a_skip_during_the_obs_request_still_undoes_the_change(
    config: Config, clock: FakeClock
) -> None:
    async with FakeObs() as fake:
        settings = ObsSettings.model_validate(
            {
                "enabled": True,
                "host": "127.0.0.1",
                "port": fake.port,
                "timeout": "2s",
                "reconnect": {"attempts": 1, "backoff": "10ms", "max_backoff": "10ms"},
            }
        )

        def effect_worker(engine: Engine) -> dict[str, Worker]:
            steps = lambda payload: steps_from_payload(payload, engine.config)  # noqa: E731
            return {"effect": EffectWorker(steps, ObsClient(settings), settings)}

        async with running(config, clock, effect_worker) as rig:
            original = fake._handlers["SetSceneItemEnabled"]

            def skip_while_obs_works(data: dict[str, Any]) -> dict[str, Any] | None:
                if data.get("sceneItemEnabled"):  # the change (not its undo) reaches OBS ...
                    rig.runner.skip("effect", by="modmin")  # ... as the moderator skips
                return original(data)

            fake._handlers["SetSceneItemEnabled"] = skip_while_obs_works
            await rig.engine.ledger.grant(ALICE, 100, reason="test")
            item = await buy(rig.engine, "peek")
            await rig.runner.drain()
            await rig.runner.stop(grace=1.0)  # closes the worker: undos in flight finish

            assert await rig.status(item) == ("cancelled", "skipped by modmin")
            assert fake.item_enabled("Main", "HydrateGif") is False


async def test_an_item_that_keeps_killing_the_bot_is_not_retried_forever(
    config: Config, clock: FakeClock
) -> None:
    async def report(outcome: Outcome) -> None:
        return None

    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 100, reason="test")
        item = await buy(engine, "tts", "hello")
        await engine.queue.set_paused("tts", True)  # the runners below only recover
        for _ in range(6):  # the bot dies while the item runs, then starts again, six times
            if await engine.queue.claim("tts") is None:
                break  # recovery gave up on it
            # the next start is another process, after the dead one's lease ran out
            engine.queue.owner = process_owner()
            clock.advance(LEASE)
            runner = QueueRunner(
                engine.queue,
                {"tts": Gate("tts")},
                timeouts={},
                report=report,
                say_for=_say_for,
                retry_on_restart=True,
            )
            await runner.start()
            await runner.stop(grace=0.1)

        state, _ = await status(engine, item)
        assert state == "failed"  # given up on after a few attempts, and refunded
        assert await balance(engine) == 100
