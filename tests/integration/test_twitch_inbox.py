"""The Twitch adapter falling behind: the REAL twitchio client on the fake Twitch
(tests/fakes/twitch_server.py), the real assembly and database, and the adapter's hand-off to
the bot held shut, as when the database stalls. twitchio cannot be made to wait (its
``dispatch`` is synchronous and its socket must be read), so the bounded inbox drops plain chat
lines, and only those, once full (``pixelbot/platforms/inbox.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pixelbot.app.assembly import App
from pixelbot.events import ChatMessage, Viewer
from pixelbot.platforms.feed import DEFAULT_LIMIT
from pixelbot.testing import assert_verified, balance_of
from tests.fakes import twitch_payloads as p
from tests.fakes.twitch_server import FakeTwitch
from tests.integration import test_twitch
from tests.integration.platform_stall import Sizes, Stall, handed_over, in_order_per_viewer
from tests.integration.test_twitch import running, until
from tests.integration.test_twitch_rewards import reward_id, rewards_config

LIMIT = 40  # the inbox's bound here (the real one is INBOX_LIMIT)
CHATTERS = [("101", "amy"), ("102", "ben"), ("103", "cat"), ("104", "dan")]
MIA = ("500", "mia")  # every paid event comes from her, so they stay in one order


# (the fixtures: the fake Twitch with both accounts' tokens, a vault key)
twitch, key = test_twitch.twitch, test_twitch.key


async def test_a_stalled_bot_drops_only_plain_chat_keeps_every_paid_event_and_catches_up(
    tmp_path: Path, twitch: FakeTwitch, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    db_path = tmp_path / "pixel.db"
    config = rewards_config(db_path, twitch)  # (with a "Hydrate!" channel-point reward)
    options = {"redeems": config.redeems, "inbox_limit": LIMIT}
    async with running(db_path, twitch, key, config, **options) as live:
        app, adapter, stall = live.app, live.adapter, Stall(live.adapter)
        sizes = Sizes(adapter.inbox)
        sent: list[tuple[str, str]] = []  # (viewer id, chat message id), in the order sent

        async def say(count: int) -> None:
            for _ in range(count):
                uid, login = CHATTERS[len(sent) % len(CHATTERS)]
                message_id = f"m-{len(sent)}"
                line = p.chat(uid, login, f"line {len(sent)}", message_id)
                await handed_over(adapter.inbox, twitch.notify(*line))
                sent.append((uid, message_id))

        # The events in flight (the feed's limit), the one the pump holds, then the inbox.
        await say(DEFAULT_LIMIT + 1 + LIMIT)
        await until(lambda: adapter.inbox.full, lambda: f"a full inbox ({len(adapter.inbox)})")
        assert adapter.inbox.shed == 0

        # Still stalled: more chat, and every kind of event that pays or charges, in between.
        hydrate = reward_id(twitch, "Hydrate!")
        paid = [
            p.follow(*MIA),
            p.subscribe(*MIA),
            p.resub(*MIA, 7, "seven months"),
            p.cheer(*MIA, 300, "cheer300 stalled?"),
            p.gift(*MIA, 3),
            p.raid(*MIA, 12),
            p.redemption(*MIA, "r-1", hydrate, "Hydrate!"),
        ]
        for payload in paid:
            await say(10)
            await handed_over(adapter.inbox, twitch.notify(*payload))
        await say(10)
        dropped = 10 * (len(paid) + 1)
        assert (adapter.inbox.shed, len(adapter.inbox)) == (dropped, LIMIT + len(paid))
        assert sizes.stop() == LIMIT + len(paid)  # bounded: chat stopped growing it at LIMIT
        assert stall.fed == []  # (nothing got through the stall)
        status = adapter.status()
        assert status.connected
        assert f"plain chat lines dropped while the bot was behind: {dropped}" in status.detail
        warnings = [m for r in caplog.records if "dropped to catch up" in (m := r.getMessage())]
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("twitch: the bot is behind (")

        stall.gate.set()  # the database is back
        kept = DEFAULT_LIMIT + 1 + LIMIT
        await until(
            lambda: stall.handled == kept + len(paid),
            lambda: f"{kept + len(paid)} events handled ({stall.handled})",
        )
        assert len(stall.fed) == kept + len(paid)

        # Every line that was kept was handled, in the order each viewer said them; the ones
        # dropped were the last (the inbox was full), and earned nothing.
        chat = [event for event in stall.fed if isinstance(event, ChatMessage)]
        assert sorted(event.id for event in chat) == sorted(m for _, m in sent[:kept])
        for viewer, ids in in_order_per_viewer(chat).items():
            assert ids == [m for uid, m in sent[:kept] if ("twitch", uid) == viewer]
        for uid, login in CHATTERS:
            lines = sum(1 for who, _ in sent[:kept] if who == uid)
            assert await balance(app, uid, login) == lines

        # Every paid event was handled, in the order it was sent.
        money = [event for event in stall.fed if not isinstance(event, ChatMessage)]
        assert [type(event).__name__ for event in money] == [
            "Follow",
            "Subscription",
            "Subscription",
            "Cheer",
            "GiftedSubs",
            "Raid",
            "RewardRedemption",
        ]
        for thanks in ("follow", "sub", "bits", "raid"):
            await until_said(twitch, f"Thanks for the {thanks}, Mia!")
        await until(lambda: ("r-1", "FULFILLED") in redemptions(twitch), "hydrate settled")
        assert "drink some water" in [s.text for s in twitch.chat_sent]

        # The bot kept running: a new command is answered.
        await twitch.notify(*p.chat("101", "amy", "!points", "m-after"))
        amy = sum(1 for who, _ in sent[:kept] if who == "101") + 1
        await until_said(twitch, f"@Amy you have {amy} pixels")
        assert len(adapter.inbox) == 0 and adapter.status().connected
        await assert_verified(app.engine)


async def until_said(twitch: FakeTwitch, fragment: str) -> None:
    def said() -> bool:
        return any(fragment in sent.text for sent in twitch.chat_sent)

    await until(said, f"the bot to say {fragment!r}")


async def balance(app: App, uid: str, login: str) -> int:
    return await balance_of(app.engine, Viewer("twitch", uid, login, login))


def redemptions(twitch: FakeTwitch) -> list[tuple[str, str]]:
    return [(redemption, status) for _, redemption, status in twitch.redemption_updates]
