"""Record and replay of raw Twitch traffic.

Each ``tests/data/twitch/NAME.jsonl`` holds EventSub WebSocket messages in the documented shape
(a session_welcome first, keepalives where Twitch sends them); replaying it through the shipped
``config.yaml`` on a fresh database must print exactly ``NAME.txt``. A recording made from live
traffic (the real twitchio client against the fake Twitch) replays to the same chat lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pixelbot.app.assembly import open_app
from pixelbot.app.replay import run_replay
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config, load_config
from pixelbot.config.redeems import TwitchReward
from pixelbot.db.engine import Database
from pixelbot.platforms.recording import redact
from pixelbot.platforms.twitch import TwitchAdapter
from pixelbot.vault import TokenVault
from tests.fakes import twitch_payloads as p
from tests.fakes.twitch_server import FakeTwitch
from tests.integration.test_cli import clean_env
from tests.integration.test_twitch import (
    BOT_REFRESH,
    BOT_SCOPES,
    BOT_TOKEN,
    BOTH,
    BROADCASTER_SCOPES,
    CASTER_REFRESH,
    CASTER_TOKEN,
    Live,
    store_tokens,
    twitch_config,
    until_said,
)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "twitch"
FILES = sorted(DATA.glob("*.jsonl"))


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def shipped_config(db_path: Path) -> Config:
    """The shipped config.yaml, with two of its redeems also channel-point rewards (the file
    shows ``twitch_reward`` commented out: it is the streamer's choice)."""
    config = load_config(
        REPO / "config.yaml", env={"DATABASE_URL": f"sqlite+aiosqlite:///{db_path}"}
    )
    redeems = dict(config.redeems)
    spin = TwitchReward(title="Spin the wheel", cost=1000)
    redeems["spin"] = redeems["spin"].model_copy(update={"twitch_reward": spin})
    redeems["hydrate"] = redeems["hydrate"].model_copy(update={"twitch_reward": TwitchReward()})
    return config.model_copy(update={"redeems": redeems})


async def replay(config: Config, lines: list[str], base_dir: Path) -> list[str]:
    out: list[str] = []
    await run_replay(config, None, lines, out=out.append, base_dir=base_dir)
    return out


def test_there_is_a_file_for_every_event_type() -> None:
    types = {
        json.loads(line)["metadata"].get("subscription_type")
        for path in FILES
        if path.stem != "broken"
        for line in lines_of(path)
    }
    assert types >= {
        "channel.chat.message",
        "channel.chat.message_delete",
        "channel.follow",
        "channel.subscribe",
        "channel.subscription.message",
        "channel.subscription.gift",
        "channel.cheer",
        "channel.raid",
        "stream.online",
        "stream.offline",
        "channel.ban",
        "channel.channel_points_custom_reward_redemption.add",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
async def test_each_file_replays_to_its_transcript(path: Path, tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    got = await replay(config, lines_of(path), tmp_path)
    assert got == lines_of(path.with_suffix(".txt"))


async def test_a_replay_pays_nothing_twice_when_run_again(tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    lines = lines_of(DATA / "cheer.jsonl")
    await replay(config, lines, tmp_path)
    again = await replay(config, lines[:2], tmp_path)  # the same notification, same message id
    assert again == []


def test_redaction_hides_credentials_wherever_they_sit() -> None:
    frame = {"a": {"access_token": "x", "nested": [{"Client_Secret": "y", "ok": 1}]}, "b": 2}
    assert redact(frame) == {
        "a": {"access_token": "[redacted]", "nested": [{"Client_Secret": "[redacted]", "ok": 1}]},
        "b": 2,
    }


async def test_live_traffic_recorded_then_replayed_says_the_same(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    record = tmp_path / "rec" / "twitch.jsonl"
    async with FakeTwitch() as twitch:
        twitch.add_user_token(BOT_TOKEN, BOT_REFRESH, p.BOT, BOT_SCOPES)
        twitch.add_user_token(CASTER_TOKEN, CASTER_REFRESH, p.BROADCASTER, BROADCASTER_SCOPES)
        db_path = tmp_path / "live.db"
        await store_tokens(db_path, key, BOTH)
        config = twitch_config(db_path, twitch)
        settings = config.platforms.twitch.model_copy(update={"record": str(record)})
        clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))
        db = Database(config.database.url)
        vault = TokenVault(db, key, clock)
        adapter = TwitchAdapter(settings, lambda: vault, clock)
        try:
            async with open_app(config, clock=clock, platforms=[adapter]) as app:
                live = Live(app, twitch, adapter, vault)
                await twitch.notify(*p.follow("77", "alice"))
                await until_said(live, "Thanks for the follow, Alice! +50 pixels")
                await twitch.notify(*p.chat("77", "alice", "!points", "m-1"))
                await until_said(live, "@Alice you have 51 pixels")
                said_live = live.said()
        finally:
            await db.dispose()
    recorded = lines_of(record)
    kinds = [json.loads(line)["metadata"]["message_type"] for line in recorded]
    assert kinds.count("session_welcome") == 2  # one socket per account
    assert kinds.count("notification") == 2
    for secret in (BOT_TOKEN, CASTER_TOKEN):
        assert secret not in "".join(recorded)
    replay_config = twitch_config(tmp_path / "replay.db", twitch)
    out = await replay(replay_config, recorded, tmp_path)
    assert [line.removeprefix("Pixel: ") for line in out] == said_live


def test_bot_py_replay_prints_the_transcript(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
    done = subprocess.run(
        [sys.executable, "bot.py", "replay", "twitch", str(DATA / "broken.jsonl")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == lines_of(DATA / "broken.txt")
