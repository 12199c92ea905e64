"""The one assembly with several platforms: real SQLite, the real writer, cogs and queue,
and ``FakePlatform`` adapters on the real ``Platform`` interface (events in, sends captured)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pixelbot.app.assembly import open_app
from pixelbot.clock import FakeClock
from pixelbot.commands.core import Command
from pixelbot.config import Config
from pixelbot.events import ChatMessage, StreamOffline, StreamOnline, Viewer
from pixelbot.outcomes import Notice, Outcome, OutcomeBus, Say, StreamChanged
from pixelbot.platforms.base import Capabilities
from pixelbot.queue.worker import Done, Job
from pixelbot.testing import EventFactory, FakePlatform, assert_verified, balance_of, make_config

ROOMY = {"reply_rate": {"messages": 1000, "per": "30s"}}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(
        tmp_path / "pixel.db",
        commands=ROOMY,
        economy={"earn": {"chat": {"points": 1, "xp": 1, "cooldown": "0s"}}},
        redeems={"tts": {"title": "Text-to-Speech", "cost": 5, "action": {"type": "tts"}}},
    )


def chatter(platform: str, login: str, user_id: str | None = None) -> Viewer:
    return Viewer(platform, user_id or f"{platform}-{login}", login, login.title())


def recording_bus(*types: type[Outcome]) -> tuple[OutcomeBus, list[Outcome]]:
    """A bus that keeps every outcome of these types published on it."""
    bus, heard = OutcomeBus(), []

    async def keep(outcome: Outcome) -> None:
        heard.append(outcome)

    bus.subscribe(keep, *types)
    return bus, heard


def chat(factory: EventFactory, who: Viewer, text: str, channel: str = "main") -> ChatMessage:
    base = factory.chat(who, text)
    return ChatMessage(
        viewer=who,
        text=text,
        channel=channel,
        id=base.id,
        platform=who.platform,
        occurred_at=base.occurred_at,
    )


async def test_two_platforms_earn_into_one_writer_and_hear_their_own_replies(
    config: Config,
) -> None:
    clock = FakeClock()
    twitch, discord = FakePlatform("twitch"), FakePlatform("discord")
    async with open_app(config, clock=clock, platforms=[twitch, discord]) as app:
        on_twitch, on_discord = EventFactory(clock, "twitch"), EventFactory(clock, "discord")
        alice, bob = chatter("twitch", "alice"), chatter("discord", "bob")
        for _ in range(3):
            await twitch.emit(chat(on_twitch, alice, "hello"))
            await discord.emit(chat(on_discord, bob, "hi there"))
        await twitch.emit(chat(on_twitch, alice, "!points"))
        await discord.emit(chat(on_discord, bob, "!points"))

        # (the !points line earns its point before the command answers)
        assert twitch.texts() == ["@Alice you have 4 pixels"]
        assert discord.texts() == ["@Bob you have 4 pixels"]
        assert await balance_of(app.engine, alice) == 4
        assert await balance_of(app.engine, bob) == 4
        assert set(app.platforms) == {"twitch", "discord"}
        assert app.status()["twitch"].connected
        await assert_verified(app.engine)
    assert twitch.stopped and discord.stopped


async def test_a_platform_that_fails_to_start_is_reported_and_the_other_runs(
    config: Config,
) -> None:
    clock = FakeClock()
    broken = FakePlatform("joystick", fail_start=ConnectionRefusedError("gateway refused"))
    working = FakePlatform("twitch")
    bus, heard = recording_bus(Notice)
    async with open_app(config, clock=clock, platforms=[broken, working], bus=bus) as app:
        assert list(app.platforms) == ["twitch"]
        assert app.platform_errors == {"joystick": "gateway refused"}
        assert not app.status()["joystick"].connected
        assert Notice("platform", "joystick did not start: gateway refused") in heard
        await working.emit(chat(EventFactory(clock, "twitch"), chatter("twitch", "al"), "!points"))
        assert working.texts() == ["@Al you have 1 pixel"]
    assert not broken.stopped  # never started, so never stopped


@pytest.mark.parametrize(
    ("style", "expected"),
    [("split", ["Redeems:", "!tts (5)"]), ("cut", ["Redeems:…"])],
)
async def test_a_long_reply_is_split_or_cut_as_the_platform_declares(
    config: Config, style: Any, expected: list[str]
) -> None:
    clock = FakeClock()
    caps = Capabilities(max_message_length=10, long_messages=style)
    narrow = FakePlatform("tiny", capabilities=caps)
    async with open_app(config, clock=clock, platforms=[narrow]):
        await narrow.emit(chat(EventFactory(clock, "tiny"), chatter("tiny", "al"), "!redeems"))
    assert narrow.texts() == expected  # "Redeems: !tts (5)" on a 10-character platform


async def test_mentions_are_written_the_platform_way_and_understood_back(config: Config) -> None:
    clock = FakeClock()
    discord = FakePlatform("discord", capabilities=Capabilities(mention_style="user_id_tag"))
    async with open_app(config, clock=clock, platforms=[discord]) as app:
        factory = EventFactory(clock, "discord")
        alice = chatter("discord", "alice", user_id="111")
        bob = chatter("discord", "bob", user_id="222")
        for _ in range(5):
            await discord.emit(chat(factory, alice, "hello"))
        await discord.emit(chat(factory, bob, "hi"))
        await discord.emit(chat(factory, alice, "!give <@!222> 2"))

        assert discord.texts()[-1] == "<@111> gave 2 pixels to Bob (you have 4 left)"
        assert await balance_of(app.engine, bob) == 3


async def test_stream_events_open_and_close_the_session(config: Config) -> None:
    clock = FakeClock()
    platform = FakePlatform("twitch")
    bus, changes = recording_bus(StreamChanged)
    async with open_app(config, clock=clock, platforms=[platform], bus=bus) as app:
        meta = {"platform": "twitch", "occurred_at": clock.now()}
        online = StreamOnline(id="s-1", channel="main", **meta)
        await platform.emit(online)
        assert await app.engine.streams.current() is not None
        await platform.emit(online)  # redelivered: no second session
        await platform.emit(StreamOffline(id="s-2", channel="main", **meta))
        assert await app.engine.streams.current() is None
    assert changes == [
        StreamChanged("twitch", "main", live=True),
        StreamChanged("twitch", "main", live=False, changed=True),
    ]


async def test_fifty_concurrent_copies_of_a_cooldown_command_run_once(config: Config) -> None:
    clock = FakeClock()
    platform = FakePlatform("twitch", capabilities=Capabilities(messages_per_window=100))
    ran: list[str] = []

    async def hug(ctx: Any) -> None:
        await asyncio.sleep(0)  # let the other copies arrive while this one runs
        ran.append(ctx.author.login)
        await ctx.reply("hugs!")

    async with open_app(config, clock=clock, platforms=[platform]) as app:
        app.commands.router.add(
            Command("hug", hug, usage="hug", help="", global_cooldown=timedelta(minutes=1))
        )
        factory = EventFactory(clock, "twitch")
        viewers = [chatter("twitch", f"viewer{n}") for n in range(50)]
        await asyncio.gather(*(platform.emit(chat(factory, v, "!hug")) for v in viewers))

        assert len(ran) == 1
        texts = platform.texts()
        assert sum(text.endswith("hugs!") for text in texts) == 1
        assert sum("!hug is on cooldown" in text for text in texts) == 49
        await assert_verified(app.engine)


async def test_a_refused_command_gives_its_cooldown_back(config: Config) -> None:
    clock = FakeClock()
    platform = FakePlatform("twitch")
    attempts: list[int] = []

    async def flaky(ctx: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first try breaks")
        await ctx.reply("worked")

    async with open_app(config, clock=clock, platforms=[platform]) as app:
        app.commands.router.add(
            Command("flaky", flaky, usage="flaky", help="", user_cooldown=timedelta(minutes=5))
        )
        factory = EventFactory(clock, "twitch")
        alice = chatter("twitch", "alice")
        await platform.emit(chat(factory, alice, "!flaky"))
        await platform.emit(chat(factory, alice, "!flaky"))
    assert platform.texts() == [
        "@Alice something went wrong with that command; nothing was charged",
        "@Alice worked",
    ]


# ----------------------------------------------------------------------------- reply rate


class Holding:
    """A TTS worker that never finishes an item (so no outcome lines join the chat)."""

    kind = "tts"

    async def perform(self, job: Job) -> Done:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


async def test_confirmations_beyond_the_rate_wait_and_go_out_merged(tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "pixel.db",
        commands=ROOMY,
        redeems={"hi": {"title": "Hi", "cost": 0, "action": {"type": "tts"}}},
    )
    clock = FakeClock()
    slow = FakePlatform("twitch", capabilities=Capabilities(messages_per_window=2))
    holding = lambda app: {"tts": Holding()}  # noqa: E731
    async with open_app(config, clock=clock, platforms=[slow], workers=holding) as app:
        factory = EventFactory(clock, "twitch")
        for name in ("ann", "bea", "cid", "dot"):
            await slow.emit(chat(factory, chatter("twitch", name), "!hi there"))
        assert slow.texts() == [
            "@Ann Hi redeemed (queued as #1)",
            "@Bea Hi redeemed (queued as #2)",
        ]
        assert app.delivery.waiting("twitch", "main") == [
            "@Cid Hi redeemed (queued as #3)",
            "@Dot Hi redeemed (queued as #4)",
        ]
        clock.advance(30)  # the window frees; the next line takes what waited with it
        await slow.emit(chat(factory, chatter("twitch", "eve"), "!hi there"))
        assert slow.texts()[2:] == [
            "@Cid Hi redeemed (queued as #3) · @Dot Hi redeemed (queued as #4) · "
            "@Eve Hi redeemed (queued as #5)"
        ]
        assert app.delivery.waiting("twitch", "main") == []


async def test_lines_that_wait_go_out_when_the_window_frees(tmp_path: Path) -> None:
    config = make_config(tmp_path / "pixel.db", commands=ROOMY)
    caps = Capabilities(messages_per_window=1, rate_window=timedelta(seconds=0.2))
    platform = FakePlatform("twitch", capabilities=caps)
    async with open_app(config, platforms=[platform]) as app:  # the real clock
        for text in ("one", "two", "three"):
            await app.bus.publish(Say("twitch", "main", text))
        assert platform.texts() == ["one"]
        for _ in range(100):  # a hang guard: the timer fires after about 0.2 s
            if len(platform.texts()) == 2:
                break
            await asyncio.sleep(0.05)
    assert platform.texts() == ["one", "two · three"]
