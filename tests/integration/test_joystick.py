"""The Joystick.tv adapter end to end: the real adapter (aiohttp's WebSocket client) against a
fake Joystick gateway on localhost (tests/fakes/joystick_server.py: ActionCable as Joystick
documents it), the real assembly, the real database on both backends. Each test ends in
balances and in what the bot said back over the socket."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pixelbot.app.assembly import App, open_app
from pixelbot.app.supervisor import Supervision
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.models import Base
from pixelbot.errors import PlatformAuthError, UnknownViewer
from pixelbot.events import Event, RewardRedemption, Viewer
from pixelbot.outcomes import Notice, Outcome, OutcomeBus, Say
from pixelbot.platforms.backoff import Backoff
from pixelbot.platforms.joystick import JoystickAdapter
from pixelbot.queue.worker import Done, Job
from pixelbot.testing import EventFactory, FakePlatform, assert_verified, balance_of, make_config
from tests.fakes import joystick_server as js
from tests.fakes.joystick_server import FakeJoystick

QUICK = Backoff(first=0.02, cap=0.1)
SUPERVISION = Supervision(backoff=QUICK, report_every=0.1, status_every=0.1)


def joystick_config(db_path: Path, fake: FakeJoystick, **joystick: Any) -> Config:
    return make_config(
        db_path,
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={
            "earn": {
                "chat": {"points": 1, "xp": 1, "cooldown": "0s"},
                "follow": {"points": 50, "xp": 10},
                "sub": {"points": 200, "xp": 50},
                "tip": {"points_per_unit": 2, "xp_per_unit": 0},
                "dropin": {"points": 25, "xp": 5, "cooldown": "1h"},
            }
        },
        redeems={"tts": {"title": "Text-to-Speech", "cost": 5, "action": {"type": "tts"}}},
        platforms={
            "console": {"enabled": False},
            "joystick": {
                "enabled": True,
                "client_id": js.CLIENT_ID,
                "client_secret": js.CLIENT_SECRET,
                "bot_username": "PixelBot",
                "api_url": fake.api_url,
                "gateway_url": fake.gateway_url,
                "silence_timeout": "1s",
                **joystick,
            },
        },
    )


def adapter_for(config: Config, clock: FakeClock) -> JoystickAdapter:
    return JoystickAdapter(config.platforms.joystick, clock, backoff=QUICK)


def jviewer(name: str) -> Viewer:
    return Viewer("joystick", name.lower(), name, name)


async def until(
    check: Callable[[], bool], what: str | Callable[[], str], patience: float = 10.0
) -> None:
    """Wait for the bot to have done something observable (a hang guard, not a timing test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not check():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out waiting for: {what if isinstance(what, str) else what()}"
            )
        await asyncio.sleep(0.01)


async def until_said(fake: FakeJoystick, text: str) -> None:
    await until(
        lambda: text in fake.said(), lambda: f"the bot to say {text!r}; it said {fake.said()}"
    )


def recording_bus(*types: type[Outcome]) -> tuple[OutcomeBus, list[Outcome]]:
    bus, heard = OutcomeBus(), []

    async def keep(outcome: Outcome) -> None:
        heard.append(outcome)

    bus.subscribe(keep, *types)
    return bus, heard


class Holding:
    """A TTS worker that keeps its item (the redeem is paid and queued; nothing is spoken)."""

    kind = "tts"

    async def perform(self, job: Job) -> Done:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


def holding(app: App) -> dict[str, Holding]:
    return {"tts": Holding()}


async def ignore(event: Event) -> None:
    """A sink for tests of the socket alone (no bot behind it)."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeJoystick]:
    async with FakeJoystick() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2026, 1, 1, 20, 0, 0))


# ---------------------------------------------------------------------------- connecting


async def test_subscribes_and_answers_chat_in_the_channel_it_came_from(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        assert fake.subscribed == 1
        assert app.status()["joystick"].connected
        await fake.push(js.chat("alice", "hello", "m-1"))
        await fake.push(js.chat("alice", "!points", "m-2"))
        await until_said(fake, "@alice you have 2 pixels")
        assert fake.actions[-1] == {
            "action": "send_message",
            "text": "@alice you have 2 pixels",
            "channelId": js.CHANNEL,
        }
        assert await balance_of(app.engine, jviewer("alice")) == 2
        assert app.status()["joystick"].last_event_at == clock.now()
        await assert_verified(app.engine)


async def test_the_bots_own_lines_and_other_channels_earn_nothing(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake, channel_id=js.CHANNEL)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        await fake.push(js.chat("PixelBot", "!points", "m-own"))
        await fake.push(js.chat("carol", "!points", "m-other", channel="ch-someone-else"))
        await fake.push(js.chat("alice", "!points", "m-1"))
        await until_said(fake, "@alice you have 1 pixel")
        assert fake.said() == ["@alice you have 1 pixel"]
        with pytest.raises(UnknownViewer):
            await balance_of(app.engine, jviewer("carol"))
        with pytest.raises(UnknownViewer):
            await balance_of(app.engine, jviewer("PixelBot"))


@pytest.mark.no_database
async def test_a_rejected_subscription_is_a_clear_auth_error(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    fake.reject = True
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    with pytest.raises(PlatformAuthError, match="rejected the GatewayChannel subscription"):
        await adapter.start(ignore)
    assert fake.connects == 1
    await adapter.stop()


@pytest.mark.sqlite_only("about the assembly's report; nothing is written")
async def test_a_wrong_secret_is_rejected_and_reported_by_the_assembly(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake, client_secret="not-the-secret")
    bus, heard = recording_bus(Notice)
    async with open_app(
        config,
        clock=clock,
        platforms=[adapter_for(config, clock)],
        bus=bus,
        supervision=Supervision(backoff=Backoff(first=60, cap=60)),
    ) as app:
        assert "joystick" not in app.platforms
        assert "client_id and client_secret" in app.platform_errors["joystick"]
        assert not app.status()["joystick"].connected
        assert any("joystick did not start" in n.text for n in heard if isinstance(n, Notice))


# ---------------------------------------------------------------------------- events


async def test_every_event_type_becomes_its_normalized_event(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        await fake.push(js.stream_event("StreamStarted", "se-1", {}))
        await until(lambda: adapter.status().last_event_at is not None, "the stream to start")
        await fake.push(js.presence("bob", "enter_stream", "up-1"))
        await fake.push(js.stream_event("Followed", "se-2", {"who": "bob", "what": "Followed"}))
        await until_said(fake, "Thanks for the follow, bob! +50 pixels")
        await fake.push(js.stream_event("Subscribed", "se-3", {"who": "dan", "months": 1}))
        await until_said(fake, "Thanks for the sub, dan! +200 pixels")
        await fake.push(
            js.stream_event("Tipped", "se-4", {"who": "eve", "how_much": 30, "tip_menu_item": ""})
        )
        await until_said(fake, "Thanks for the tip, eve! +60 pixels")
        watching = app.intake.presence.watching(clock.now())
        assert [w.viewer.login for w in watching] == ["bob"]
        await fake.push(js.presence("bob", "leave_stream", "up-2"))
        await until(lambda: len(app.intake.presence) == 0, "bob to leave")
        assert await app.engine.streams.current() is not None
        await fake.push(js.stream_event("StreamEnded", "se-5", {}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # a hang guard (it was 2 s: two writes on a busy server)
        while await app.engine.streams.current() is not None:
            assert loop.time() < deadline, "the stream never ended"
            await asyncio.sleep(0.02)
        assert await balance_of(app.engine, jviewer("bob")) == 25 + 50  # drop-in + follow
        assert await balance_of(app.engine, jviewer("dan")) == 200
        assert await balance_of(app.engine, jviewer("eve")) == 60  # 30 tokens x 2
        await assert_verified(app.engine)


async def test_moderator_flag_reaches_the_commands(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]):
        await fake.push(js.chat("bob", "hi", "m-0"))
        await fake.push(js.chat("viewer", "!addpoints bob 10", "m-1"))
        await fake.push(js.chat("mod", "!addpoints bob 10", "m-2", moderator=True))
        await until(lambda: len(fake.said()) >= 2, lambda: f"two answers; got {fake.said()}")
        # (two viewers' commands run at once: their answers come in whichever order they end)
        said = fake.said()
        refused = [line for line in said if line.startswith("@viewer ")]
        done = [line for line in said if line.startswith("@mod ")]
        assert len(refused) == 1 and "moderator" in refused[0], said
        assert done == ["@mod added 10 pixels to bob (now 11)"], said


async def test_a_frame_that_does_not_parse_is_skipped_and_reading_goes_on(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        await fake.push_raw("{not json")
        await fake.push({"event": "ChatMessage", "type": "new_message", "messageId": "x"})
        await fake.push(js.stream_event("Tipped", "se-bad", {"who": "eve", "how_much": "lots"}))
        await fake.push(js.chat("alice", "!points", "m-1"))
        await until_said(fake, "@alice you have 1 pixel")
        assert adapter.skipped == 3
        assert adapter.connections == 1  # the same socket throughout
        assert app.status()["joystick"].connected


@pytest.mark.no_database
async def test_a_whisper_goes_out_as_send_whisper(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake, channel_id=js.CHANNEL)
    adapter = adapter_for(config, clock)
    await adapter.start(ignore)
    try:
        await adapter.whisper("alice", "psst")
        await until(lambda: bool(fake.actions), "the whisper")
    finally:
        await adapter.stop()
    assert fake.actions == [
        {"action": "send_whisper", "username": "alice", "text": "psst", "channelId": js.CHANNEL}
    ]


# ---------------------------------------------------------------------------- dropping


async def test_a_dropped_socket_reconnects_and_pays_nothing_twice(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    tip = js.stream_event("Tipped", "se-tip", {"who": "eve", "how_much": 10})
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        await fake.push(tip)
        await until_said(fake, "Thanks for the tip, eve! +20 pixels")
        await fake.drop()
        await until(lambda: adapter.connections == 2, "the adapter to reconnect")
        await until(lambda: fake.listening == 1, "the new socket to subscribe")
        assert adapter.status().connected and adapter.status().retrying_since is None
        await fake.push(tip)  # Joystick delivers it again after the reconnect
        await fake.push(js.chat("eve", "!points", "m-1"))
        await until_said(fake, "@eve you have 21 pixels")
        assert fake.said().count("Thanks for the tip, eve! +20 pixels") == 1
        await assert_verified(app.engine)


async def test_a_subscription_rejected_on_reconnect_is_reported_and_retried(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter]) as app:
        fake.reject = True  # the streamer removed the bot, say
        await fake.drop()
        await until(lambda: fake.connects >= 3, "a few rejected attempts")
        status = app.status()["joystick"]
        assert not status.connected and status.retrying_since == clock.now()
        assert "rejected the GatewayChannel subscription" in status.detail
        fake.reject = False  # reinstalled
        await until(lambda: adapter.status().connected, "the adapter to come back")
        await fake.push(js.chat("alice", "!points", "m-1"))
        await until_said(fake, "@alice you have 1 pixel")


@pytest.mark.no_database
async def test_a_lost_socket_shows_since_when_and_why_while_it_is_being_closed(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a socket waits for the gateway's answer (up to 10 s from a gateway gone
    silent). Before, the status meanwhile said "not connected" with no "since" and no reason:
    both were set only once the close was over."""
    closing, release = asyncio.Event(), asyncio.Event()
    close_socket = JoystickAdapter._close_socket

    async def slow_close(self: JoystickAdapter) -> None:
        if not self._stopping:  # (the drop's close, not the stop's)
            closing.set()
            await release.wait()
        await close_socket(self)

    monkeypatch.setattr(JoystickAdapter, "_close_socket", slow_close)
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    await adapter.start(ignore)
    try:
        await fake.drop()
        await asyncio.wait_for(closing.wait(), 10)
        status = adapter.status()
        assert not status.connected
        assert status.retrying_since == clock.now()
        assert status.detail == "the gateway closed the socket"
        release.set()
        await until(lambda: adapter.connections == 2, "the adapter to reconnect")
        assert adapter.status().connected and adapter.status().retrying_since is None
    finally:
        release.set()
        await adapter.stop()


@pytest.mark.no_database
async def test_a_silent_gateway_is_taken_as_dead(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    fake.ping_every = 30  # no pings: the socket looks open but nothing comes
    config = joystick_config(tmp_path / "pixel.db", fake, silence_timeout="0.3s")
    adapter = adapter_for(config, clock)
    await adapter.start(ignore)
    try:
        await until(lambda: adapter.connections >= 2, "a reconnect after the silence")
    finally:
        await adapter.stop()


# ---------------------------------------------------------------------------- several platforms


async def test_one_platform_dies_the_other_earns_and_redeems_and_the_dead_one_comes_back(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    other = FakePlatform("twitch")
    bus, heard = recording_bus(Notice)
    async with open_app(
        config,
        clock=clock,
        platforms=[adapter, other],
        workers=holding,
        bus=bus,
        supervision=SUPERVISION,
    ) as app:
        on_twitch = EventFactory(clock, "twitch")
        al = Viewer("twitch", "t-al", "al", "Al")
        await fake.stop()  # Joystick's gateway goes away entirely
        await until(lambda: not adapter.status().connected, "the adapter to notice")
        for n in range(6):
            await other.emit(on_twitch.chat(al, f"hello {n}"))
        await other.emit(on_twitch.chat(al, "!tts hi there"))
        assert other.texts()[-1] == "@Al Text-to-Speech redeemed for 5 pixels (queued as #1)"
        assert await balance_of(app.engine, Viewer("twitch", "t-al", "al", "Al")) == 7 - 5
        status = app.status()["joystick"]
        assert status.retrying_since == clock.now() and not status.connected
        await until(
            lambda: any("joystick is down since" in n.text for n in heard if isinstance(n, Notice)),
            "the once-a-minute report",
        )
        await fake.start()  # back on the same port
        await until(lambda: adapter.status().connected, "the adapter to reconnect")
        await fake.push(js.chat("alice", "!points", "m-9"))
        await until_said(fake, "@alice you have 1 pixel")
        assert app.status()["twitch"].connected
        await assert_verified(app.engine)


async def test_a_platform_down_at_start_is_retried_until_it_comes(
    tmp_path: Path, clock: FakeClock
) -> None:
    fake = FakeJoystick()  # not started yet: connections are refused
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    other = FakePlatform("twitch")
    bus, heard = recording_bus(Notice)
    try:
        async with open_app(
            config, clock=clock, platforms=[adapter, other], bus=bus, supervision=SUPERVISION
        ) as app:
            assert list(app.platforms) == ["twitch"]
            assert "cannot reach the gateway" in app.platform_errors["joystick"]
            assert app.status()["joystick"].retrying_since == clock.now()
            await until(
                lambda: any(
                    "platforms" not in n.text and "retrying since" in n.text
                    for n in heard
                    if isinstance(n, Notice)
                ),
                lambda: f"a status line; heard {heard}",
            )
            await fake.start()
            await until(lambda: "joystick" in app.platforms, "the retry to connect")
            assert app.platform_errors == {}  # up, and no longer shown as down in the same step
            assert app.status()["joystick"].connected
            await until(
                lambda: any(
                    isinstance(n, Notice) and n.text.startswith("joystick is connected (after")
                    for n in heard
                ),
                lambda: f"the connected line; heard {heard}",
            )
            await fake.push(js.stream_event("Followed", "se-1", {"who": "bob"}))
            await until_said(fake, "Thanks for the follow, bob! +50 pixels")
            assert other.texts() == []  # the thanks went where the follow happened
        assert not adapter.status().connected  # stopped with the bot
    finally:
        await fake.stop()


async def test_announcements_go_to_the_platform_where_the_event_happened(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    other = FakePlatform("twitch")
    async with open_app(config, clock=clock, platforms=[adapter, other]):
        await fake.push(js.stream_event("Followed", "se-1", {"who": "bob"}))
        await until_said(fake, "Thanks for the follow, bob! +50 pixels")
        on_twitch = EventFactory(clock, "twitch")
        await other.emit(on_twitch.follow(Viewer("twitch", "t-cy", "cy", "Cy")))
        assert other.texts() == ["Thanks for the follow, Cy! +50 pixels"]
        assert fake.said() == ["Thanks for the follow, bob! +50 pixels"]
        assert app_status_line_mentions_both(adapter, other)


def app_status_line_mentions_both(adapter: JoystickAdapter, other: FakePlatform) -> bool:
    from pixelbot.app.supervisor import status_line

    line = status_line({"joystick": adapter.status(), "twitch": other.status()})
    return "joystick connected (last event" in line and "twitch connected" in line


@pytest.mark.sqlite_only("about the status line; nothing is written")
async def test_the_status_line_names_real_platforms_and_leaves_the_console_alone(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = make_config(tmp_path / "pixel.db")
    for names, expected in ((["console"], []), (["console", "twitch"], ["twitch connected"])):
        bus, heard = recording_bus(Notice)
        platforms = [FakePlatform(name) for name in names]
        async with open_app(
            config, clock=clock, platforms=platforms, bus=bus, supervision=SUPERVISION
        ):
            await asyncio.sleep(0.35)  # a few status periods
        lines = {n.text.split(" (")[0] for n in heard if isinstance(n, Notice)}
        assert sorted(lines) == expected, names


class Settling(FakePlatform):
    """A Twitch stand-in whose channel-point redemptions are settled on it, and which cannot
    connect ``refusals`` times before it does."""

    def __init__(self, refusals: int = 0) -> None:
        super().__init__("twitch")
        self.refusals = refusals
        self.settled: list[tuple[str, str, bool]] = []

    async def start(self, sink: Any) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise ConnectionRefusedError("Twitch is down")
        await super().start(sink)

    async def settle_reward(self, redeem: str, redemption_id: str, fulfilled: bool) -> None:
        self.settled.append((redeem, redemption_id, fulfilled))


async def test_a_platform_that_comes_late_still_gets_the_settlements_that_waited_for_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = make_config(
        tmp_path / "pixel.db",
        redeems={
            "hydrate": {
                "title": "Hydrate!",
                "action": {"type": "chat", "message": "drink some water"},
                "twitch_reward": True,
            }
        },
    )
    first = Settling()
    async with open_app(config, clock=clock, platforms=[first]) as app:
        await app.queue.pause("effect")
        alice = Viewer("twitch", "t-al", "alice", "Alice")
        await first.emit(
            RewardRedemption(
                id="ev-1", platform="twitch", occurred_at=clock.now(), viewer=alice,
                reward="hydrate", redemption_id="red-1", channel="main",
            )
        )  # fmt: skip
        claimed = await app.engine.queue.claim("effect")  # running when the "crash" comes
        assert claimed is not None
    clock.advance(60)  # the dead process's lease runs out
    late = Settling(refusals=2)
    async with open_app(config, clock=clock, platforms=[late], supervision=SUPERVISION) as app:
        assert "twitch" in app.platform_errors  # recovery owes Twitch a settlement: it waits
        await until(lambda: late.settled != [], "the settlement once Twitch is up")
        assert late.settled == [("hydrate", "red-1", False)]


# ---------------------------------------------------------------------------- ordered feeding


def deleted(message_id: str, event_id: str) -> dict[str, Any]:
    """A moderator deleted a chat line (Joystick names the line, not its author)."""
    return {
        "id": event_id,
        "event": "ChatMessage",
        "type": "message_deleted",
        "messageId": message_id,
        "createdAt": "2026-01-01T20:00:01Z",
        "channelId": js.CHANNEL,
    }


async def test_a_tts_deleted_at_once_is_still_cancelled_and_refunded(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    """Other viewers' lines are handled at once, but a deletion (here without its author: a
    barrier) still finds the TTS its line queued a moment before."""
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter], workers=holding) as app:
        await app.queue.pause("tts")  # nothing speaks while we moderate
        for n in range(6):
            await fake.push(js.chat("alice", f"hello {n}", f"warm-{n}"))
            await fake.push(js.chat("bob", f"hi {n}", f"bob-{n}"))
        await fake.push(js.chat("alice", "!tts first words", "tts-1"))
        await fake.push(js.chat("bob", "!tts other words", "tts-2"))
        await fake.push(deleted("tts-1", "del-1"))  # at once: nothing awaited in between
        for n in range(6, 12):
            await fake.push(js.chat("bob", f"hi {n}", f"bob-{n}"))
        await until(
            lambda: any("was cancelled" in line for line in fake.said()),
            lambda: f"alice's TTS to be cancelled; the bot said {fake.said()}",
        )
        await until(lambda: len(fake.said()) >= 3, "the two confirmations")
        said = "\n".join(fake.said())
        for who in ("alice", "bob"):  # (which is #1 depends on which commit came first)
            assert re.search(
                rf"@{who} Text-to-Speech redeemed for 5 pixels \(queued as #\d\)", said
            )
        assert await balance_of(app.engine, jviewer("alice")) == 7  # 7 lines; the 5 came back
        for _ in range(500):
            if await balance_of(app.engine, jviewer("bob")) == 13 - 5:
                break
            await asyncio.sleep(0.01)
        assert await balance_of(app.engine, jviewer("bob")) == 13 - 5  # bob's TTS stays
        assert said.count("was cancelled") == 1
        await assert_verified(app.engine)


async def events_logged(app: App) -> int:
    async with app.engine.db.read() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(Base.metadata.tables["events"]))
            ).scalar_one()
        )


async def test_2000_lines_from_200_viewers_all_commit_with_exact_balances(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    """A busy chat: every viewer's tenth line asks ``!points`` and must see all ten earns (one
    viewer's lines in order), while the writer commits the viewers together (in groups)."""
    config = joystick_config(tmp_path / "pixel.db", fake)
    adapter = adapter_for(config, clock)
    bus, heard = recording_bus(Say)  # (Joystick's 10 lines per 10 s would merge the answers)
    async with open_app(config, clock=clock, platforms=[adapter], bus=bus) as app:
        writer = app.engine.writer
        batches, operations = writer.batches, writer.operations
        for n in range(2000):
            who = f"v{n % 200:03d}"
            text = "!points" if n >= 1800 else f"line {n}"
            await fake.push(js.chat(who, text, f"m-{n}"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while await events_logged(app) < 2000:
            assert loop.time() < deadline, f"only {await events_logged(app)} of 2000 logged"
            await asyncio.sleep(0.02)

        def answers() -> dict[str, str]:
            return {
                o.mention.login: o.text
                for o in heard
                if isinstance(o, Say) and o.mention is not None and "you have" in o.text
            }

        await until(lambda: len(answers()) == 200, lambda: f"200 answers; got {len(answers())}", 60)
        assert set(answers().values()) == {"you have 10 pixels"}
        for v in range(200):
            assert await balance_of(app.engine, jviewer(f"v{v:03d}")) == 10
        assert writer.operations - operations >= 2000  # each line's earn (and each !points)
        assert (writer.batches - batches) * 2 <= writer.operations - operations  # grouped
        await assert_verified(app.engine)


async def test_going_live_is_neither_overtaken_nor_overtakes_the_chat_around_it(
    fake: FakeJoystick, tmp_path: Path, clock: FakeClock
) -> None:
    """Ten viewers redeem TTS just before the stream starts and ten just after, with nothing
    awaited in between: the first ten count outside any stream, the last ten in it (per-stream
    limits count from the start)."""
    config = joystick_config(tmp_path / "pixel.db", fake)
    config = config.model_copy(update={"tts": config.tts.model_copy(update={"max_queue": 50})})
    adapter = adapter_for(config, clock)
    async with open_app(config, clock=clock, platforms=[adapter], workers=holding) as app:
        await app.queue.pause("tts")
        for n in range(5):  # 4 lines and the !tts line itself: the 5 it costs
            for v in range(20):
                await fake.push(js.chat(f"v{v:02d}", f"hello {n}", f"warm-{v}-{n}"))
        for v in range(10):
            await fake.push(js.chat(f"v{v:02d}", "!tts before", f"before-{v}"))
        await fake.push(js.stream_event("StreamStarted", "se-live", {}))
        for v in range(10, 20):
            await fake.push(js.chat(f"v{v:02d}", "!tts after", f"after-{v}"))

        async def sessions() -> dict[str, int | None]:
            items = Base.metadata.tables["queue_items"]
            async with app.engine.db.read() as conn:
                rows = (
                    await conn.execute(select(items.c.payload, items.c.stream_session_id))
                ).all()
            return {str(payload["message"]): session for payload, session in rows}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(found := await sessions()) < 20:
            assert loop.time() < deadline, f"only {len(found)} of 20 TTS queued: {fake.said()}"
            await asyncio.sleep(0.02)
        live = await app.engine.streams.current()
        assert live is not None
        assert {found[f"before-{v}"] for v in range(10)} == {None}
        assert {found[f"after-{v}"] for v in range(10, 20)} == {live.id}
        await assert_verified(app.engine)
