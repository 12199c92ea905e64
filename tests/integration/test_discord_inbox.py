"""The Discord adapter falling behind: the REAL discord.py client on the fake Discord
(tests/fakes/discord_server.py), the real assembly and database, and the adapter's hand-off to
the bot held shut, as when the database stalls. discord.py awaits each frame's handling before
it reads the next, so once the bounded inbox is full its reading waits: Discord holds the rest,
and nothing is dropped (``pixelbot/platforms/inbox.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pixelbot.events import ChatMessage, Viewer
from pixelbot.platforms.feed import DEFAULT_LIMIT
from pixelbot.testing import assert_verified
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeDiscord
from tests.integration import test_discord
from tests.integration.platform_stall import Sizes, Stall, handed_over, in_order_per_viewer
from tests.integration.test_discord import Live, discord_config, paid, running, until, until_said

LIMIT = 40  # the inbox's bound here (the real one is INBOX_LIMIT)
CHATTERS = [
    p.user(f"10000000000000001{n:02}", name) for n, name in enumerate(["amy", "ben", "cat", "dan"])
]
MIA = p.user("1000000000000000200", "mia")  # she pays for a redeem in the middle of the stall
MIA_KEY = ("discord", MIA["id"])
EXTRA = 60  # frames sent while the inbox is full


fake, key = test_discord.fake, test_discord.key  # (the fixtures: the fake Discord, a vault key)


def lines(sent: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Chat lines from the chatters in turn, each kept in ``sent``."""

    def line() -> dict[str, Any]:
        who = CHATTERS[len(sent) % len(CHATTERS)]
        data = p.message(who, f"line {len(sent)}", p.START + timedelta(milliseconds=len(sent)))
        sent.append(data)
        return data

    return line


async def fill(live: Live, line: Callable[[], dict[str, Any]]) -> None:
    """The events in flight (the feed's limit), the one the pump holds, then the inbox."""
    inbox = live.adapter.inbox
    for _ in range(DEFAULT_LIMIT + 1 + LIMIT):
        await handed_over(inbox, live.fake.dispatch("MESSAGE_CREATE", line()))
    await until(lambda: inbox.full, lambda: f"a full inbox ({len(inbox)})")


async def all_handled(live: Live, stall: Stall, sent: list[dict[str, Any]]) -> None:
    """Every line was handled once, in the order each viewer said them, and earned once."""
    await until(
        lambda: stall.handled >= len(sent), lambda: f"{len(sent)} handled ({stall.handled})"
    )
    chat = [e for e in stall.fed if isinstance(e, ChatMessage) and e.viewer.key != MIA_KEY]
    assert sorted(e.id for e in chat) == sorted(data["id"] for data in sent)
    for viewer, ids in in_order_per_viewer(chat).items():
        assert ids == [d["id"] for d in sent if ("discord", d["author"]["id"]) == viewer]
    for who in CHATTERS:
        await paid(live, who, sum(1 for d in sent if d["author"]["id"] == who["id"]))


async def test_a_stalled_bot_makes_discord_wait_and_loses_nothing(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    config = discord_config(tmp_path / "pixel.db", fake)
    async with running(config, fake, key, inbox_limit=LIMIT) as live:
        adapter, stall = live.adapter, Stall(live.adapter)
        await live.app.engine.ledger.grant(Viewer(*MIA_KEY, MIA["username"], ""), 10, reason="test")
        sizes = Sizes(adapter.inbox)
        sent: list[dict[str, Any]] = []  # MESSAGE_CREATE bodies, in the order sent
        line = lines(sent)
        await fill(live, line)
        client = adapter.client
        assert client is not None
        read = client.ws.sequence
        assert read == fake.sequence  # (discord.py has read everything sent so far)

        # Still stalled: more chat and a paid redeem, sent while discord.py's reading waits.
        redeem = p.interaction(MIA, "hydrate", [], p.START + timedelta(minutes=5))

        async def more() -> None:
            for n in range(EXTRA):
                await fake.dispatch("MESSAGE_CREATE", line())
                if n == EXTRA // 2:
                    await fake.dispatch("INTERACTION_CREATE", redeem)

        sending = asyncio.create_task(more())
        await until(lambda: fake.sequence >= read + 8, "the fake to send more")
        await asyncio.sleep(0.2)  # (time for discord.py to read on, were it not held)
        assert client.ws.sequence == read  # it reads no further: Discord holds the rest
        assert len(adapter.inbox) == LIMIT and adapter.inbox.shed == 0
        assert "the bot is behind: 40 events waiting" in adapter.status().detail
        assert stall.fed == []

        stall.gate.set()  # the database is back
        await asyncio.wait_for(sending, 10)
        await until(
            lambda: stall.handled == len(sent) + 1,
            lambda: f"{len(sent) + 1} events handled ({stall.handled})",
        )
        assert len(stall.fed) == len(sent) + 1
        assert sizes.stop() == LIMIT  # bounded, and nothing dropped to keep it so
        assert adapter.inbox.shed == 0

        await all_handled(live, stall, sent)

        # The redeem paid for in the middle of the stall ran, and was charged once.
        await until_said(live, "Drink!")
        await paid(live, MIA, 10 + 1 - 3)  # (a slash command earns like a line)

        # The bot kept running: a new command is answered.
        data = p.message(CHATTERS[0], "!points", p.START + timedelta(minutes=6))
        await fake.dispatch("MESSAGE_CREATE", data)
        amy = sum(1 for d in sent if d["author"]["id"] == CHATTERS[0]["id"]) + 1
        await until_said(live, f"you have {amy} pixels")
        assert len(adapter.inbox) == 0 and adapter.status().connected
        assert adapter.status().detail == ""
        await assert_verified(live.app.engine)


async def test_a_stall_past_the_heartbeat_timeout_resumes_and_loses_nothing(
    tmp_path: Path, fake: FakeDiscord, key: bytes
) -> None:
    """Held longer than discord.py's heartbeat timeout, the gateway is closed (4000) by
    discord.py's keep-alive; once the bot has room again it resumes the session, and Discord
    replays what it sent after the last frame read: each line still handled exactly once."""
    fake.heartbeat_interval = 100  # ms (Discord's is ~41 s; its timeout 60 s)
    config = discord_config(tmp_path / "pixel.db", fake)
    async with running(config, fake, key, inbox_limit=LIMIT, heartbeat_timeout=0.5) as live:
        stall = Stall(live.adapter)
        sent: list[dict[str, Any]] = []
        line = lines(sent)
        await fill(live, line)
        for _ in range(EXTRA):
            await fake.dispatch("MESSAGE_CREATE", line())
        await until(lambda: 4000 in fake.closes, "discord.py to give the connection up")
        assert stall.fed == []

        stall.gate.set()
        await until(lambda: fake.resumes >= 1, "the bot to resume")
        await all_handled(live, stall, sent)
        assert len(stall.fed) == len(sent)  # (nothing twice)
        assert len(fake.identifies) == 1  # the same session, resumed
        await until(lambda: live.adapter.status().connected, "connected again")
        await assert_verified(live.app.engine)
