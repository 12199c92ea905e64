"""Chat delivery when one platform answers several viewers at once (platforms/feed.py runs
different viewers' commands concurrently): a flush awaiting its sends has already taken its
room, so another flush meanwhile cannot push the channel over its rate."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.app.delivery import ChatDelivery
from pixelbot.clock import FakeClock, utc
from pixelbot.outcomes import Say
from pixelbot.platforms.base import Capabilities
from pixelbot.testing import FakePlatform, make_config

pytestmark = pytest.mark.no_database


class SlowPlatform(FakePlatform):
    """Sends only when the test opens the gate (a platform's HTTP round trip)."""

    def __init__(self, capabilities: Capabilities) -> None:
        super().__init__("slow", capabilities=capabilities)
        self.gate = asyncio.Event()

    async def send(self, channel: str, text: str) -> None:
        await self.gate.wait()
        await super().send(channel, text)


async def test_a_flush_meanwhile_cannot_overshoot_the_platform_rate(tmp_path: Path) -> None:
    config = make_config(tmp_path / "unused.db")
    delivery = ChatDelivery(FakeClock(utc(2026, 1, 1)), lambda: config, flush_timers=False)
    caps = Capabilities(
        max_message_length=20, messages_per_window=3, rate_window=timedelta(seconds=30)
    )
    platform = SlowPlatform(caps)
    delivery.attach(platform)
    await delivery.started()
    long = "word " * 12  # three messages of at most 20 characters
    first = asyncio.create_task(delivery.deliver(Say("slow", "main", long.strip())))
    for _ in range(5):
        await asyncio.sleep(0)
    second = asyncio.create_task(delivery.deliver(Say("slow", "main", "another answer")))
    for _ in range(5):
        await asyncio.sleep(0)
    platform.gate.set()
    await asyncio.gather(first, second)
    assert len(platform.sent) == 3  # the platform's 3 per window, not 4
    assert delivery.waiting("slow", "main") == ["another answer"]
