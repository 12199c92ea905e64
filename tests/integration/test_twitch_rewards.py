"""Channel-point rewards end to end: synced to the fake Twitch at start, redemptions run the
redeem's action without charging points, and each redemption is settled on Twitch exactly once
(FULFILLED when its item is done; CANCELED when it fails, is cancelled or is recovered after a
crash), even across a restart."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import text

from pixelbot.app.assembly import App, open_app
from pixelbot.clock import FakeClock, utc
from pixelbot.commands.names import declared_command_names
from pixelbot.commands.services import ReloadResult
from pixelbot.config import Config, load_config
from pixelbot.db.engine import Database
from pixelbot.platforms.twitch import TwitchAdapter
from pixelbot.testing_db import database_url
from pixelbot.vault import TokenVault
from tests.fakes import twitch_payloads as p
from tests.fakes.twitch_server import FakeTwitch
from tests.integration.test_twitch import (
    BOT_REFRESH,
    BOT_SCOPES,
    BOT_TOKEN,
    BOTH,
    BROADCASTER_SCOPES,
    CASTER_REFRESH,
    CASTER_TOKEN,
    store_tokens,
    twitch_config,
    twitch_settings,
    until,
)

REDEEMS: dict[str, Any] = {
    "hydrate": {
        "title": "Hydrate!",
        "cost": 300,
        "max_per_stream": 1,  # Twitch enforces the reward's own limits: not ours
        "action": {"type": "chat", "message": "drink some water"},
        "twitch_reward": {"cost": 500, "prompt": "Make the streamer drink"},
    },
    "clip": {
        "title": "Save Clip",
        "action": {"type": "obs", "do": "clip"},  # OBS is off: cannot be performed
        "twitch_reward": True,
    },
    "wave": {"title": "Wave", "cost": 1, "action": {"type": "chat", "message": "o/"}},
}


def rewards_config(db_path: Path, twitch: FakeTwitch) -> Config:
    base = twitch_config(db_path, twitch)
    return base.model_copy(update={"redeems": Config.model_validate({"redeems": REDEEMS}).redeems})


@pytest.fixture
async def twitch() -> AsyncIterator[FakeTwitch]:
    async with FakeTwitch() as fake:
        fake.add_user_token(BOT_TOKEN, BOT_REFRESH, p.BOT, BOT_SCOPES)
        fake.add_user_token(CASTER_TOKEN, CASTER_REFRESH, p.BROADCASTER, BROADCASTER_SCOPES)
        # one reward this bot made earlier and no redeem names now, one the streamer made
        fake.rewards["old-1"] = {"id": "old-1", "title": "Old", "cost": 5, "is_enabled": True,
                                 "_ours": True}  # fmt: skip
        fake.rewards["theirs"] = {"id": "theirs", "title": "Theirs", "cost": 9, "is_enabled": True,
                                  "_ours": False}  # fmt: skip
        yield fake


class Bot:
    """Starts and restarts the bot on one database, as a streamer would."""

    def __init__(self, tmp_path: Path, twitch: FakeTwitch) -> None:
        self.db_path = tmp_path / "pixel.db"
        self.twitch = twitch
        self.key = Fernet.generate_key()
        self.clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))

    @asynccontextmanager
    async def run(self, config_path: Path | None = None) -> AsyncIterator[App]:
        """Run on ``rewards_config``, or on the config file at ``config_path`` (for !reload)."""
        if config_path is None:
            config = rewards_config(self.db_path, self.twitch)
        else:
            config = load_config(config_path, command_names=declared_command_names)
        db = Database(config.database.url)
        vault = TokenVault(db, self.key, self.clock)
        adapter = TwitchAdapter(
            config.platforms.twitch, lambda: vault, self.clock, redeems=config.redeems
        )
        try:
            async with open_app(
                config, clock=self.clock, platforms=[adapter], config_path=config_path
            ) as app:
                assert app.platform_errors == {}
                yield app
        finally:
            await db.dispose()


@pytest.fixture
async def bot(tmp_path: Path, twitch: FakeTwitch) -> Bot:
    made = Bot(tmp_path, twitch)
    await store_tokens(made.db_path, made.key, BOTH)
    return made


def reward_id(twitch: FakeTwitch, title: str) -> str:
    return next(r["id"] for r in twitch.rewards.values() if r["title"] == title)


def said(twitch: FakeTwitch) -> list[str]:
    return [sent.text for sent in twitch.chat_sent]


async def redeem(twitch: FakeTwitch, title: str, redemption: str, message_id: str) -> None:
    payload = p.redemption("77", "alice", redemption, reward_id(twitch, title), title)
    await twitch.notify(*payload, message_id=message_id)


async def test_rewards_are_created_updated_and_stale_ones_disabled(
    bot: Bot, twitch: FakeTwitch
) -> None:
    async with bot.run():
        hydrate = twitch.rewards[reward_id(twitch, "Hydrate!")]
        assert (hydrate["cost"], hydrate["prompt"], hydrate["is_enabled"]) == (
            500,
            "Make the streamer drink",
            True,
        )
        assert twitch.rewards[reward_id(twitch, "Save Clip")]["cost"] == 100
        assert twitch.rewards["old-1"]["is_enabled"] is False  # disabled, not deleted
        assert twitch.rewards["theirs"]["is_enabled"] is True  # not ours to touch
        assert "Wave" not in {r["title"] for r in twitch.rewards.values()}
    async with bot.run():  # a restart finds the same rewards instead of making new ones
        assert sorted(r["title"] for r in twitch.rewards.values()) == [
            "Hydrate!",
            "Old",
            "Save Clip",
            "Theirs",
        ]


async def settlements_on_items(app: App, expected: dict[int, str]) -> dict[int, str]:
    """How each queue item's channel-point redemption was settled, as recorded on the item:
    ``expected`` once it is so (the note follows the platform's answer), else what is there
    after 10 seconds (a hang guard: it was 5 s, for a few writes on a busy server)."""
    found: dict[int, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        async with app.engine.db.read() as conn:
            rows = await conn.execute(text("SELECT id, result FROM queue_items ORDER BY id"))
            found = {}
            for item_id, result in rows:
                data = json.loads(result) if isinstance(result, str) else (result or {})
                if "platform_reward" in data:
                    found[item_id] = data["platform_reward"]
        if found == expected or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_done_item_is_fulfilled_once_and_costs_no_points(
    bot: Bot, twitch: FakeTwitch
) -> None:
    async with bot.run() as app:
        await redeem(twitch, "Hydrate!", "red-1", "msg-1")
        await redeem(twitch, "Hydrate!", "red-1", "msg-1")  # redelivered
        await redeem(twitch, "Hydrate!", "red-2", "msg-2")  # a second one: our limit is not used
        await until(lambda: len(twitch.redemption_updates) == 2, "two settlements")
        await asyncio.sleep(0.2)  # (time for a wrong third one to show)
        assert sorted(twitch.redemption_updates) == [
            (reward_id(twitch, "Hydrate!"), "red-1", "FULFILLED"),
            (reward_id(twitch, "Hydrate!"), "red-2", "FULFILLED"),
        ]
        assert said(twitch).count("drink some water") == 2
        assert "@Alice Hydrate! redeemed (queued as #1)" in said(twitch)
        summary = await app.engine.wallets.summary(await app.engine.wallets.find("alice", "twitch"))
        assert summary.points == 0  # paid in channel points, not pixels
        expected = {1: "FULFILLED", 2: "FULFILLED"}
        assert await settlements_on_items(app, expected) == expected


async def test_what_cannot_be_performed_is_canceled_at_once(bot: Bot, twitch: FakeTwitch) -> None:
    async with bot.run():
        await redeem(twitch, "Save Clip", "red-9", "msg-9")
        await until(lambda: twitch.redemption_updates != [], "a settlement")
        assert twitch.redemption_updates == [(reward_id(twitch, "Save Clip"), "red-9", "CANCELED")]
        await until(lambda: any("channel points are refunded" in s for s in said(twitch)), "told")


def write_config(path: Path, bot: Bot, redeems: dict[str, Any]) -> Path:
    """The streamer's config.yaml for these tests, with ``redeems``."""
    data = {
        "database": {"url": database_url(bot.db_path)},
        "tts": {"dir": str(bot.db_path.parent / "tts")},
        "wheels": {"main": {"prizes": [{"name": "Nothing"}]}},
        "commands": {"reply_rate": {"messages": 1000, "per": "30s"}},
        "platforms": {"console": {"enabled": False}, "twitch": twitch_settings(bot.twitch)},
        "redeems": redeems,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_a_reload_syncs_the_rewards_again(
    bot: Bot, twitch: FakeTwitch, tmp_path: Path
) -> None:
    """``!reload`` re-syncs the channel-point rewards: a changed cost and prompt reach Twitch,
    and a reward no redeem names any more is disabled, without a restart."""
    path = write_config(tmp_path / "pixel.yaml", bot, REDEEMS)
    async with bot.run(path) as app:
        assert twitch.rewards[reward_id(twitch, "Save Clip")]["is_enabled"] is True
        changed = {key: value for key, value in REDEEMS.items() if key != "clip"}
        changed["hydrate"] = {
            **REDEEMS["hydrate"],
            "twitch_reward": {"cost": 700, "prompt": "Drink twice"},
        }
        write_config(path, bot, changed)

        assert await app.reload() == ReloadResult(applied=True, problems=[])
        hydrate = twitch.rewards[reward_id(twitch, "Hydrate!")]
        assert (hydrate["cost"], hydrate["prompt"], hydrate["is_enabled"]) == (
            700,
            "Drink twice",
            True,
        )
        assert twitch.rewards[reward_id(twitch, "Save Clip")]["is_enabled"] is False
        await redeem(twitch, "Hydrate!", "red-5", "msg-5")  # still mapped to its redeem
        await until(lambda: twitch.redemption_updates != [], "a settlement")
        assert twitch.redemption_updates == [(reward_id(twitch, "Hydrate!"), "red-5", "FULFILLED")]


async def test_a_cleared_item_is_canceled(bot: Bot, twitch: FakeTwitch) -> None:
    async with bot.run() as app:
        await app.queue.pause("effect")
        await redeem(twitch, "Hydrate!", "red-3", "msg-3")
        await until(lambda: "@Alice Hydrate! redeemed (queued as #1)" in said(twitch), "queued")
        await twitch.notify(*p.chat("88", "mod", "!clearqueue effect", "m-1", ("moderator",)))
        await until(lambda: twitch.redemption_updates != [], "a settlement")
        assert twitch.redemption_updates == [(reward_id(twitch, "Hydrate!"), "red-3", "CANCELED")]
        assert await settlements_on_items(app, {1: "CANCELED"}) == {1: "CANCELED"}


async def test_crash_recovery_cancels_once_even_across_restarts(
    bot: Bot, twitch: FakeTwitch
) -> None:
    async with bot.run() as app:
        await app.queue.pause("effect")
        await redeem(twitch, "Hydrate!", "red-4", "msg-4")
        await until(lambda: "@Alice Hydrate! redeemed (queued as #1)" in said(twitch), "queued")
        claimed = await app.engine.queue.claim("effect")  # running when the "crash" comes
        assert claimed is not None and claimed.id == 1
    assert twitch.redemption_updates == []
    bot.clock.advance(60)  # the dead process's lease on the item runs out (PostgreSQL's rule)
    async with bot.run():  # the recovery at start settles it once Twitch is connected
        await until(lambda: twitch.redemption_updates != [], "a settlement")
    async with bot.run():
        await asyncio.sleep(0.2)
    assert twitch.redemption_updates == [(reward_id(twitch, "Hydrate!"), "red-4", "CANCELED")]


REDEMPTIONS = "/helix/channel_points/custom_rewards/redemptions"


async def test_a_settlement_twitch_did_not_take_is_sent_again_at_the_next_start(
    bot: Bot, twitch: FakeTwitch, caplog: pytest.LogCaptureFixture
) -> None:
    """Twitch could not be reached when the item ended: the operator reads one line (no
    traceback), the item has no note of it, and the next start sends it, once."""
    twitch.redemption_updates_unavailable = True
    async with bot.run() as app:
        with caplog.at_level(logging.WARNING):
            await redeem(twitch, "Hydrate!", "red-5", "msg-5")
            await until(lambda: ("PATCH", REDEMPTIONS) in twitch.requests, "a settlement tried")
            await until(
                lambda: any("could not mark" in r.getMessage() for r in caplog.records),
                "the failure told",
            )
        told = [r for r in caplog.records if "could not mark" in r.getMessage()]
        assert "red-5" in told[0].getMessage() and not told[0].exc_info
        assert await settlements_on_items(app, {}) == {}  # done, but Twitch took nothing
    assert twitch.redemption_updates == []
    twitch.redemption_updates_unavailable = False
    for _ in range(2):  # sent at the first start, and only then
        async with bot.run() as app:
            expected = {1: "FULFILLED"}
            assert await settlements_on_items(app, expected) == expected
    assert twitch.redemption_updates == [(reward_id(twitch, "Hydrate!"), "red-5", "FULFILLED")]


async def test_a_redemption_settled_by_hand_meanwhile_is_noted_as_refused_and_left_alone(
    bot: Bot, twitch: FakeTwitch, caplog: pytest.LogCaptureFixture
) -> None:
    """Twitch could not be reached when the item ended, and the streamer settled it by hand on
    Twitch meanwhile (as the log asked). At the next start Twitch refuses the send: that is
    noted on the item, said once without a traceback, and never sent again."""
    twitch.redemption_updates_unavailable = True
    async with bot.run() as app:
        await redeem(twitch, "Hydrate!", "red-7", "msg-7")
        await until(lambda: ("PATCH", REDEMPTIONS) in twitch.requests, "a settlement tried")
    twitch.redemption_updates_unavailable = False
    twitch.settled_redemptions.add("red-7")  # by hand, on Twitch
    with caplog.at_level(logging.WARNING):
        async with bot.run() as app:
            assert await settlements_on_items(app, {1: "REFUSED"}) == {1: "REFUSED"}
    refusals = [r for r in caplog.records if "would not mark" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    tries = twitch.requests.count(("PATCH", REDEMPTIONS))
    async with bot.run():
        await asyncio.sleep(0.2)
    assert twitch.requests.count(("PATCH", REDEMPTIONS)) == tries  # not sent again
    assert twitch.redemption_updates == []
