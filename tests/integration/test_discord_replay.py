"""Record and replay of raw Discord traffic.

Each ``tests/data/discord/NAME.jsonl`` holds gateway dispatch frames in the documented shape
(``GUILD_CREATE`` of the server first, then the events); replaying it through the shipped
``config.yaml`` (with the server's channels and roles filled in) on a fresh database must print
exactly ``NAME.txt``. A recording made from live traffic (the real discord.py client against the
fake Discord) replays to the same chat lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pixelbot.app.replay import run_replay
from pixelbot.config import Config, load_config
from pixelbot.platforms.discord_events import HANDLED
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeDiscord
from tests.integration.test_cli import clean_env
from tests.integration.test_discord import chat, discord_config, running, slash, until_said

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "discord"
FILES = sorted(DATA.glob("*.jsonl"))


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def shipped_config(db_path: Path) -> Config:
    """The shipped config.yaml, with the test server's channels and roles."""
    config = load_config(
        REPO / "config.yaml", env={"DATABASE_URL": f"sqlite+aiosqlite:///{db_path}"}
    )
    discord = config.platforms.discord.model_copy(
        update={
            "guild_id": int(p.GUILD_ID),
            "channels": [int(p.CHAT)],
            "voice_channel": int(p.VOICE),
            "roles": config.platforms.discord.roles.model_copy(
                update={"moderator": [int(p.MOD_ROLE)], "vip": [int(p.VIP_ROLE)]}
            ),
        }
    )
    platforms = config.platforms.model_copy(update={"discord": discord})
    return config.model_copy(update={"platforms": platforms})


async def replay(config: Config, lines: list[str], base_dir: Path) -> list[str]:
    out: list[str] = []
    await run_replay(config, None, lines, out=out.append, base_dir=base_dir, platform="discord")
    return out


@pytest.mark.no_database
def test_there_is_a_file_for_every_event_type() -> None:
    kinds = {
        json.loads(line)["t"] for path in FILES if path.stem != "broken" for line in lines_of(path)
    }
    assert kinds >= HANDLED
    for path in FILES:
        assert path.with_suffix(".txt").exists(), path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
async def test_each_file_replays_to_its_transcript(path: Path, tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    got = await replay(config, lines_of(path), tmp_path)
    assert got == lines_of(path.with_suffix(".txt"))


async def test_a_replay_pays_nothing_twice_when_run_again(tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    lines = lines_of(DATA / "message_create.jsonl")
    await replay(config, lines, tmp_path)
    # the same chat line again (same message id): no points, no answer
    again = await replay(config, [lines[0], lines[1]], tmp_path)
    assert again == []


async def test_live_traffic_recorded_then_replayed_says_the_same(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    record = tmp_path / "rec" / "discord.jsonl"
    async with FakeDiscord(p.guild()) as fake:
        config = discord_config(tmp_path / "live.db", fake, record=str(record))
        async with running(config, fake, key) as live:
            await chat(live, p.ALICE, "hello")
            await chat(live, p.ALICE, "!points")
            await until_said(live, "you have 2 pixels")
            await slash(live, p.ALICE, "points")
            await until_said(live, "you have 3 pixels")
            said_live = live.said()
    recorded = lines_of(record)
    kinds = [json.loads(line)["t"] for line in recorded]
    assert kinds == ["GUILD_CREATE", "MESSAGE_CREATE", "MESSAGE_CREATE", "INTERACTION_CREATE"]
    assert "interaction-token" not in "".join(recorded)  # redacted: it answers for 15 minutes
    replay_config = discord_config(tmp_path / "replay.db", fake)
    out = await replay(replay_config, recorded, tmp_path)
    assert [line.removeprefix("Pixel: ") for line in out] == said_live


@pytest.mark.sqlite_only("the command line on a SQLite file; the replays above run on both")
def test_bot_py_replay_discord_prints_the_transcript(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
    done = subprocess.run(
        [sys.executable, "bot.py", "replay", "discord", str(DATA / "broken.jsonl")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == lines_of(DATA / "broken.txt")
