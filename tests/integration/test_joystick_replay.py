"""Record and replay of raw Joystick.tv gateway traffic.

Each ``tests/data/joystick/NAME.jsonl`` holds ActionCable frames in the shapes Joystick's
developer page documents (a welcome and a confirmed subscription first); replaying it through
the shipped ``config.yaml`` on a fresh database must print exactly ``NAME.txt``. A recording
made from live traffic (the real adapter against the fake gateway) replays to the same chat
lines."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pixelbot.app.assembly import open_app
from pixelbot.app.replay import run_replay
from pixelbot.cli import with_recording
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config, load_config
from pixelbot.platforms.joystick import JoystickAdapter
from pixelbot.platforms.joystick_events import GATEWAY_IDENTIFIER
from pixelbot.testing import make_config
from pixelbot.testing_db import database_url
from tests.fakes import joystick_server as js
from tests.fakes.joystick_server import FakeJoystick
from tests.integration.test_cli import clean_env, write_config
from tests.integration.test_joystick import QUICK, joystick_config, until, until_said

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "joystick"
FILES = sorted(DATA.glob("*.jsonl"))


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def shipped_config(db_path: Path) -> Config:
    """The shipped config.yaml (on this test's backend); the bot's Joystick name is Pixel."""
    config = load_config(REPO / "config.yaml", env={"DATABASE_URL": database_url(db_path)})
    platforms = config.platforms
    joystick = platforms.joystick.model_copy(update={"bot_username": "Pixel"})
    return config.model_copy(
        update={"platforms": platforms.model_copy(update={"joystick": joystick})}
    )


async def replay(config: Config, lines: list[str], base_dir: Path) -> list[str]:
    out: list[str] = []
    await run_replay(config, None, lines, platform="joystick", out=out.append, base_dir=base_dir)
    return out


@pytest.mark.no_database
def test_there_is_a_file_for_every_event_type() -> None:
    seen: set[tuple[str, str]] = set()
    for path in FILES:
        if path.stem == "broken":
            continue
        for line in lines_of(path):
            frame = json.loads(line)
            message = frame.get("message")
            if isinstance(message, dict):
                assert frame["identifier"] == GATEWAY_IDENTIFIER
                seen.add((message["event"], message["type"]))
    assert seen >= {
        ("ChatMessage", "new_message"),
        ("UserPresence", "enter_stream"),
        ("UserPresence", "leave_stream"),
        ("StreamEvent", "Followed"),
        ("StreamEvent", "Subscribed"),
        ("StreamEvent", "Tipped"),
        ("StreamEvent", "StreamStarted"),
        ("StreamEvent", "StreamEnded"),
    }


@pytest.mark.no_database
def test_record_writes_one_file_per_platform_when_both_record(tmp_path: Path) -> None:
    path = tmp_path / "night.jsonl"
    on = {"client_id": "x", "client_secret": "y"}
    twitch = {"channel": "c", "client_id": "x", "client_secret": "y", "bot_id": "1"}
    both = make_config(
        tmp_path / "pixel.db",
        platforms={"joystick": {"enabled": True, **on}, "twitch": {"enabled": True, **twitch}},
    )
    recording = with_recording(both, path).platforms
    assert recording.twitch.record == str(tmp_path / "night.twitch.jsonl")
    assert recording.joystick.record == str(tmp_path / "night.joystick.jsonl")
    alone = make_config(tmp_path / "pixel.db", platforms={"joystick": {"enabled": True, **on}})
    assert with_recording(alone, path).platforms.joystick.record == str(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
async def test_each_file_replays_to_its_transcript(path: Path, tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    got = await replay(config, lines_of(path), tmp_path)
    assert got == lines_of(path.with_suffix(".txt"))


async def test_a_replay_pays_nothing_twice_when_run_again(tmp_path: Path) -> None:
    config = shipped_config(tmp_path / "pixel.db")
    lines = lines_of(DATA / "tip.jsonl")
    await replay(config, lines, tmp_path)
    again = await replay(config, lines[:4], tmp_path)  # the same tips, the same ids
    assert again == []


async def test_live_traffic_recorded_then_replayed_says_the_same(tmp_path: Path) -> None:
    record = tmp_path / "rec" / "joystick.jsonl"
    clock = FakeClock(utc(2026, 1, 1, 20, 0, 0))
    async with FakeJoystick() as fake:
        config = joystick_config(tmp_path / "live.db", fake, record=str(record))
        adapter = JoystickAdapter(config.platforms.joystick, clock, backoff=QUICK)
        async with open_app(config, clock=clock, platforms=[adapter]):
            await fake.push(js.stream_event("Followed", "se-1", {"who": "alice"}))
            await until_said(fake, "Thanks for the follow, alice! +50 pixels")
            await fake.push(js.chat("alice", "!points", "m-1"))
            await until_said(fake, "@alice you have 51 pixels")
            said_live = fake.said()
    recorded = lines_of(record)
    kinds = [json.loads(line).get("type") for line in recorded]
    assert kinds[:2] == ["welcome", "confirm_subscription"]
    assert "ping" not in kinds
    assert js.CLIENT_SECRET not in record.read_text() and fake.key not in record.read_text()
    replay_config = joystick_config(tmp_path / "replay.db", fake)
    out = await replay(replay_config, recorded, tmp_path)
    assert [line.removeprefix("Pixel: ") for line in out] == said_live


@pytest.mark.sqlite_only("bot.py runs in a subprocess on its own SQLite file")
def test_bot_py_replay_joystick_prints_the_transcript(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'pixel.db'}")
    done = subprocess.run(
        [sys.executable, "bot.py", "replay", "joystick", str(DATA / "broken.jsonl")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == lines_of(DATA / "broken.txt")


@pytest.mark.sqlite_only("bot.py runs in a subprocess on its own SQLite file")
async def test_bot_py_run_serves_joystick_and_records_its_frames(tmp_path: Path) -> None:
    """The whole path a streamer uses: config.yaml -> registry -> adapter -> chat answered."""
    record = tmp_path / "joystick.jsonl"
    async with FakeJoystick() as fake:
        config = write_config(
            tmp_path / "config.yaml",
            tmp_path / "pixel.db",
            f"""
            platforms:
              joystick:
                enabled: true
                client_id: "{js.CLIENT_ID}"
                client_secret: "{js.CLIENT_SECRET}"
                bot_username: Pixel
                gateway_url: "{fake.gateway_url}"
            """,
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "bot.py", "run", "--config", str(config), "--record", str(record),
            cwd=REPO, env=clean_env(), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await until(lambda: fake.listening == 1, "bot.py to subscribe", patience=60)
            await fake.push(js.chat("alice", "!points", "m-1"))
            await until_said(fake, "@alice you have 1 pixel")
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "Pixel is running on: joystick" in out.decode()
    assert js.CLIENT_SECRET not in out.decode() + err.decode()
    recorded = [json.loads(line) for line in lines_of(record)]
    assert [f.get("type") for f in recorded[:2]] == ["welcome", "confirm_subscription"]
    assert recorded[2]["message"]["messageId"] == "m-1"
