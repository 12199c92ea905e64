"""A platform the supervisor brings back late (``app/supervisor.py``) while the channel-point
settlements still owed are being sent (``ChannelPointRewards.platforms_started``): a fault there
never counts as a failed start, and a stop that comes meanwhile still stops the platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pixelbot.app.assembly import open_app
from pixelbot.app.rewards import ChannelPointRewards
from pixelbot.app.supervisor import Supervision
from pixelbot.clock import FakeClock
from pixelbot.errors import DatabaseUnreachable
from pixelbot.events import Event
from pixelbot.platforms.backoff import Backoff
from pixelbot.testing import FakePlatform, make_config

QUICK = Supervision(backoff=Backoff(first=0.02, cap=0.05), report_every=60, status_every=60)


class DownAtFirst(FakePlatform):
    """Refuses its first start, as a platform in an outage does; counts starts and stops."""

    def __init__(self) -> None:
        super().__init__("twitch")
        self.starts = 0
        self.stops = 0

    async def start(self, sink: Callable[[Event], Awaitable[object]]) -> None:
        self.starts += 1
        if self.starts == 1:
            raise RuntimeError("down")
        await super().start(sink)

    async def stop(self) -> None:
        self.stops += 1
        await super().stop()


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_a_fault_while_sending_what_is_owed_does_not_start_the_platform_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the fault escaped the late start: the supervisor took it for a failed start and
    started the running platform a second time (a second client, never closed)."""
    sends = 0

    async def unreachable(self: ChannelPointRewards) -> None:
        nonlocal sends
        sends += 1
        raise DatabaseUnreachable("the server cannot be reached")

    monkeypatch.setattr(ChannelPointRewards, "_send_owed", unreachable)
    platform = DownAtFirst()
    config = make_config(tmp_path / "pixel.db")
    async with open_app(config, clock=FakeClock(), platforms=[platform], supervision=QUICK) as app:
        await until(lambda: "twitch" in app.platforms and sends == 2)  # at start, then late
        await asyncio.sleep(0.2)  # (time for a wrong third start to show)
        assert platform.starts == 2
    assert platform.stops == 1
    assert any("settlements still owed" in r.getMessage() for r in caplog.records)


async def test_a_stop_while_the_late_platform_sends_what_is_owed_still_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop cancels the supervisor's task in the middle of the sending: the platform was
    connected (in ``app.platforms``) but not yet counted as recovered, and was never stopped."""
    sending = asyncio.Event()

    async def slow_when_late(self: ChannelPointRewards) -> None:  # many owed, a call each
        if self._platforms():  # (at the bot's start nothing is connected: nothing to send)
            sending.set()
            await asyncio.sleep(30)

    monkeypatch.setattr(ChannelPointRewards, "_send_owed", slow_when_late)
    platform = DownAtFirst()
    config = make_config(tmp_path / "pixel.db")
    async with open_app(config, clock=FakeClock(), platforms=[platform], supervision=QUICK):
        await asyncio.wait_for(sending.wait(), 10)
        assert platform.starts == 2
    assert platform.stops == 1


async def test_a_late_platform_is_shown_connected_while_it_sends_what_is_owed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, its start error was cleared only once the sending was over (seconds on a busy
    server): the status page showed a connected platform as down, with the old error."""
    sending = asyncio.Event()
    release = asyncio.Event()

    async def slow_when_late(self: ChannelPointRewards) -> None:
        if self._platforms():
            sending.set()
            await release.wait()

    monkeypatch.setattr(ChannelPointRewards, "_send_owed", slow_when_late)
    platform = DownAtFirst()
    config = make_config(tmp_path / "pixel.db")
    async with open_app(config, clock=FakeClock(), platforms=[platform], supervision=QUICK) as app:
        assert app.platform_errors == {"twitch": "down"}
        await asyncio.wait_for(sending.wait(), 10)
        assert app.platform_errors == {}
        status = app.status()["twitch"]
        assert status.connected and status.detail != "down"
        release.set()
