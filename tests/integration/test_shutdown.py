"""A shutdown loses nothing it has taken, and answers everyone it took: the REAL twitchio,
discord.py and Joystick (aiohttp) clients on the fake servers (tests/fakes/), the real
assembly and database. The bot's hand-off to the economy is held shut (``Stall``) with events
in flight, one held by the adapter's reader and more waiting in its inbox; then the bot stops,
and the hand-off opens a moment later, during the grace (``pixelbot/platforms/stopping.py``).

Before, a stop cancelled the adapter's reader first (cutting a stream going live in the
middle, dropping what waited in the inbox without a word) and stopped the platforms one after
another, each with a grace of its own; an event pushed into ``App.handle`` from elsewhere
could still be running when the economy writer stopped under it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pixelbot.app.assembly import open_app
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.engine import Database
from pixelbot.db.models import EventRow, QueueItem, StreamSession
from pixelbot.events import Viewer
from pixelbot.outcomes import Say
from pixelbot.platforms.feed import DEFAULT_LIMIT
from pixelbot.platforms.twitch import TwitchAdapter
from pixelbot.testing import (
    EventFactory,
    FakePlatform,
    assert_verified,
    balance_of,
    make_config,
    open_test_engine,
)
from pixelbot.vault import TokenVault
from tests.fakes import discord_payloads as dp
from tests.fakes import joystick_server as js
from tests.fakes import twitch_payloads as tp
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.joystick_server import FakeJoystick
from tests.fakes.twitch_server import FakeTwitch
from tests.integration import test_discord, test_joystick, test_twitch
from tests.integration.platform_stall import Stall, handed_over
from tests.integration.test_twitch import running, until
from tests.integration.test_twitch_rewards import reward_id, rewards_config

OPEN_AFTER = 0.2  # seconds into the stop at which the stalled hand-off opens
STOP_LOGS = ("pixelbot.platforms.stopping", "pixelbot.platforms.feed", "pixelbot.app.assembly")

# (the fixtures: the fake Twitch with both accounts' tokens, the fake Discord, the fake
# Joystick, a vault key)
twitch, key = test_twitch.twitch, test_twitch.key
fake_discord = test_discord.fake
fake_joystick = test_joystick.fake


def open_during_the_stop(stall: Stall) -> None:
    asyncio.get_running_loop().call_later(OPEN_AFTER, stall.gate.set)


def stop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name in STOP_LOGS]


async def counts(config: Config) -> dict[str, int]:
    """What the database holds after the bot stopped: events logged, stream sessions, queue
    items."""
    async with open_test_engine(config) as engine, engine.db.read() as conn:
        found = {}
        for name, model in (("events", EventRow), ("sessions", StreamSession)):
            found[name] = (await conn.execute(select(func.count()).select_from(model))).scalar()
        found["queued"] = (await conn.execute(select(func.count()).select_from(QueueItem))).scalar()
        return {name: int(n or 0) for name, n in found.items()}


async def points(config: Config, who: Viewer) -> int:
    async with open_test_engine(config) as engine:
        await assert_verified(engine)
        return await balance_of(engine, who)


# ---------------------------------------------------------------------------- Twitch


async def test_twitch_finishes_every_event_it_received_before_the_stop(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    db_path = tmp_path / "pixel.db"
    config = rewards_config(db_path, twitch)  # (with a "Hydrate!" channel-point reward)
    async with running(db_path, twitch, key, config, redeems=config.redeems) as live:
        adapter, stall = live.adapter, Stall(live.adapter)
        hydrate = reward_id(twitch, "Hydrate!")
        # amy's line is in flight; the stream going live waits for it in the pump (a barrier);
        # ben's command and mia's channel-point redemption wait in the inbox behind it
        for payload in (
            tp.chat("101", "amy", "hello", "m-1"),
            tp.online(),
            tp.chat("102", "ben", "!points", "m-2"),
            tp.redemption("500", "mia", "r-1", hydrate, "Hydrate!"),
        ):
            await handed_over(adapter.inbox, twitch.notify(*payload))
        await until(lambda: len(adapter.inbox) == 2, lambda: f"2 waiting ({len(adapter.inbox)})")
        assert stall.fed == []
        open_during_the_stop(stall)
    # every one of them was handled: logged, paid, the live stream opened, the command
    # answered (the client was still connected), the redemption queued
    assert [type(e).__name__ for e in stall.fed] == [
        "ChatMessage",
        "StreamOnline",
        "ChatMessage",
        "RewardRedemption",
    ]
    assert "@Ben you have 1 pixel" in [sent.text for sent in twitch.chat_sent]
    found = await counts(config)
    assert (found["sessions"], found["queued"]) == (1, 1)
    assert await points(config, Viewer("twitch", "101", "amy", "amy")) == 1
    assert await points(config, Viewer("twitch", "102", "ben", "ben")) == 1
    assert stop_warnings(caplog) == []  # nothing was cut, nothing left behind


async def test_twitch_past_the_grace_cuts_and_says_what_was_lost(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    db_path = tmp_path / "pixel.db"
    async with running(db_path, twitch, key, grace=0.2) as live:
        adapter = live.adapter
        Stall(adapter)  # (never opened: the database hangs)
        await handed_over(adapter.inbox, twitch.notify(*tp.chat("101", "amy", "hi", "m-1")))
        await handed_over(adapter.inbox, twitch.notify(*tp.online()))
        await handed_over(adapter.inbox, twitch.notify(*tp.chat("102", "ben", "hi", "m-2")))
        await handed_over(adapter.inbox, twitch.notify(*tp.chat("103", "cat", "hi", "m-3")))
        await until(lambda: len(adapter.inbox) == 2, "2 waiting")
    assert stop_warnings(caplog) == [
        "twitch: stopped with events unfinished: 2 cut off mid-way (after the 0.2 s grace); "
        "2 received and never handled (Twitch does not send an event again)"
    ]
    async with open_test_engine(test_twitch.twitch_config(db_path, twitch)) as engine:
        await assert_verified(engine)


# ---------------------------------------------------------------------------- Discord


async def test_discord_finishes_and_answers_every_event_it_received_before_the_stop(
    tmp_path: Path, fake_discord: FakeDiscord, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config = test_discord.discord_config(tmp_path / "pixel.db", fake_discord)
    # (a grace no slow machine reaches: nothing may be cut here)
    async with test_discord.running(config, fake_discord, key, grace=60.0) as live:
        adapter, stall = live.adapter, Stall(live.adapter)
        # the feed full (its limit in flight, one more held by the pump), then a slash command
        # and a prefix command waiting in the inbox
        for n in range(DEFAULT_LIMIT + 1):
            data = dp.message(dp.ALICE, f"line {n}", test_discord.later(live, 0.001))
            await handed_over(adapter.inbox, fake_discord.dispatch("MESSAGE_CREATE", data))
        asked = dp.interaction(dp.BOB, "points", [], test_discord.later(live))
        await handed_over(adapter.inbox, fake_discord.dispatch("INTERACTION_CREATE", asked))
        line = dp.message(dp.BOB, "!points", test_discord.later(live))
        await handed_over(adapter.inbox, fake_discord.dispatch("MESSAGE_CREATE", line))
        await until(lambda: len(adapter.inbox) == 2, lambda: f"2 waiting ({len(adapter.inbox)})")
        open_during_the_stop(stall)
    assert len(stall.fed) == DEFAULT_LIMIT + 3
    # the interaction was taken ("thinking...") and answered, the prefix command too
    assert [c.body for c in fake_discord.sent("POST", f"/interactions/{asked['id']}/")] == [
        {"type": 5}
    ]
    (answer,) = fake_discord.sent("PATCH", f"/{asked['token']}/messages/@original")
    assert "you have 1 pixel" in answer.body["content"]  # (its own line: 1 point)
    replies = [r.body.get("content", "") for r in fake_discord.sent("POST", "/messages")]
    assert any("you have 2 pixels" in text for text in replies), replies
    assert await points(config, Viewer("discord", dp.ALICE["id"], "alice", "")) == (
        DEFAULT_LIMIT + 1
    )
    assert stop_warnings(caplog) == []


# ---------------------------------------------------------------------------- Joystick


async def test_joystick_finishes_the_event_its_reader_holds_and_answers_over_the_socket(
    tmp_path: Path, fake_joystick: FakeJoystick, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))
    config = test_joystick.joystick_config(tmp_path / "pixel.db", fake_joystick)
    adapter = test_joystick.adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]):
        stall = Stall(adapter)
        await fake_joystick.push(js.chat("alice", "!points", "m-1"))
        await fake_joystick.push(js.stream_event("StreamStarted", "se-1", {}))  # (a barrier)
        # (the reader holds the stream start; True at once where there is no such flag)
        await until(lambda: getattr(adapter, "_handing_over", True), "the stream start held")
        open_during_the_stop(stall)
    assert [type(e).__name__ for e in stall.fed] == ["ChatMessage", "StreamOnline"]
    assert fake_joystick.said() == ["@alice you have 1 pixel"]
    assert (await counts(config))["sessions"] == 1  # the stream start was not cut off
    assert stop_warnings(caplog) == []


# ---------------------------------------------------------------------------- the assembly


class Dispatching(FakePlatform):
    """A platform whose library calls the bot from tasks of its own (as a callback API does)
    and whose ``stop`` does not wait for them."""

    def __init__(self, name: str = "twitch") -> None:
        super().__init__(name)
        self.tasks: set[asyncio.Task[object]] = set()

    def dispatch(self, event: Any) -> None:
        task = asyncio.create_task(self.emit(event))
        self.tasks.add(task)


class HeldSay:
    """Holds the first ``Say`` on the bus until ``gate`` opens (a slow chat delivery)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def __call__(self, outcome: Say) -> None:
        if not self.gate.is_set():
            self.holding.set()
            await self.gate.wait()


async def test_an_event_in_hand_finishes_before_the_writer_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The brief's case: a handler that outlives its platform's ``stop`` used to meet the
    stopped writer ("the bot is restarting") and lose the viewer's command."""
    config = make_config(
        tmp_path / "pixel.db",
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={"starting_points": 100, "earn": {"chat": {"points": 1, "xp": 1000}}},
    )
    clock = FakeClock()
    platform, held = Dispatching(), HeldSay()
    alice, bob = Viewer("twitch", "1", "alice", "Alice"), Viewer("twitch", "2", "bob", "Bob")
    on_twitch = EventFactory(clock, "twitch")
    async with open_app(config, clock=clock, platforms=[platform]) as app:
        held.gate.set()
        await platform.emit(on_twitch.chat(bob, "hi"))
        held.gate.clear()
        app.bus.subscribe(held, Say)  # (before the delivery: its level-up line is held)
        platform.dispatch(on_twitch.chat(alice, "!give bob 5"))  # levels alice up first
        await asyncio.wait_for(held.holding.wait(), 10)
        asyncio.get_running_loop().call_later(OPEN_AFTER, held.gate.set)
    assert all(task.done() for task in platform.tasks)
    assert await points(config, bob) == 100 + 1 + 5  # the give was committed
    assert not any("restarting" in text for text in platform.texts())
    assert "@Alice gave 5 pixels to Bob" in " ".join(platform.texts())


class SlowStop(FakePlatform):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name)
        self.log = log

    async def stop(self) -> None:
        self.log.append(f"{self.name} stopping")
        await asyncio.sleep(0.05)  # (its grace)
        self.log.append(f"{self.name} stopped")
        await super().stop()


async def test_platforms_stop_side_by_side_so_their_graces_do_not_add_up(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path / "pixel.db")
    log: list[str] = []
    async with open_app(
        config, clock=FakeClock(), platforms=[SlowStop("twitch", log), SlowStop("discord", log)]
    ):
        pass
    assert sorted(log[:2]) == ["discord stopping", "twitch stopping"]
    assert sorted(log[2:]) == ["discord stopped", "twitch stopped"]


async def test_a_hurry_ends_the_grace_at_once(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A second Ctrl-C sets ``hurry``: the events in hand are cut at once (and said so), the
    rest stops in order, and the database is whole."""
    caplog.set_level(logging.WARNING)
    db_path = tmp_path / "pixel.db"
    hurry = asyncio.Event()
    await test_twitch.store_tokens(db_path, key, test_twitch.BOTH)
    config = test_twitch.twitch_config(db_path, twitch)
    vault_db = Database(config.database.url)
    vault = TokenVault(vault_db, key, FakeClock())
    adapter = TwitchAdapter(config.platforms.twitch, lambda: vault, FakeClock())
    try:
        async with open_app(config, clock=FakeClock(), platforms=[adapter], hurry=hurry):
            Stall(adapter)  # (never opened)
            await handed_over(adapter.inbox, twitch.notify(*tp.chat("101", "amy", "hi", "m-1")))
            await until(lambda: adapter._feed is not None and adapter._feed.in_flight == 1, "1")
            asyncio.get_running_loop().call_later(OPEN_AFTER, hurry.set)
    finally:
        await vault_db.dispose()
    assert stop_warnings(caplog) == [
        "twitch: stopped with events unfinished: 1 cut off mid-way (stopping at once)"
    ]
    async with open_test_engine(config) as engine:
        await assert_verified(engine)


async def test_twitch_cancels_the_redemptions_a_stop_leaves_unhandled(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """One waited in the inbox past the grace, one came while stopping: neither was logged nor
    queued, and Twitch does not send them again. Both are CANCELED while the client is still
    connected, so the viewers get their channel points back; the log names each."""
    caplog.set_level(logging.WARNING)
    db_path = tmp_path / "pixel.db"
    config = rewards_config(db_path, twitch)
    async with running(db_path, twitch, key, config, redeems=config.redeems, grace=1.0) as live:
        adapter = live.adapter
        Stall(adapter)  # (never opened: the database hangs)
        hydrate = reward_id(twitch, "Hydrate!")
        # amy's line in flight, the stream going live held by the pump (a barrier), and the
        # redemption waiting in the inbox behind it
        await handed_over(adapter.inbox, twitch.notify(*tp.chat("101", "amy", "hi", "m-1")))
        await handed_over(adapter.inbox, twitch.notify(*tp.online()))
        waiting = tp.redemption("500", "mia", "r-1", hydrate, "Hydrate!")
        await handed_over(adapter.inbox, twitch.notify(*waiting))
        await until(lambda: len(adapter.inbox) == 1, "the redemption waiting")
        late = tp.redemption("501", "max", "r-2", hydrate, "Hydrate!")
        asyncio.get_running_loop().call_later(
            0.1, lambda: asyncio.ensure_future(twitch.notify(*late))
        )
    assert sorted(twitch.redemption_updates) == [
        (hydrate, "r-1", "CANCELED"),
        (hydrate, "r-2", "CANCELED"),
    ]
    named = [r.getMessage() for r in caplog.records if "came as the bot stopped" in r.getMessage()]
    assert len(named) == 2 and all("canceled" in text for text in named)
    assert (await counts(config))["queued"] == 0
