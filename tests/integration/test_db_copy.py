"""``bot.py db copy --to URL``: SQLite to PostgreSQL and back through the real command, with
identical rows at the end; a copy killed half way resumes without duplicating anything."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pixelbot.clock import FakeClock
from pixelbot.db.models import Base, PlatformToken
from pixelbot.db.throwaway import PostgresServer
from pixelbot.testing import EventFactory, make_config, open_test_engine, viewer
from pixelbot.testing_db import query

REPO = Path(__file__).resolve().parents[2]
REDEEMS = {"tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}}}
pytestmark = pytest.mark.backends_inside("copies between SQLite and PostgreSQL itself")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def config_file(tmp_path: Path, url: str, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f'database:\n  url: "{url}"\n')
    return path


def copy_command(config: Path, target: str, *extra: str) -> list[str]:
    return [sys.executable, "bot.py", "db", "copy", "--config", str(config), "--to", target, *extra]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


def copy(config: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        copy_command(config, target),
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,  # a hang guard, not a timing assertion
    )


def everything(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in key order, with timestamps as text (drivers differ)."""
    found = {}
    for table in Base.metadata.sorted_tables:
        keys = ", ".join(column.name for column in table.primary_key.columns)
        rows = query(url, f"SELECT * FROM {table.name} ORDER BY {keys}")
        found[table.name] = [tuple(_plain(value) for value in row) for row in rows]
    return found


def _plain(value: object) -> object:
    if isinstance(value, datetime):  # SQLite keeps the text it was given: six decimals
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, str) and value.startswith(("{", "[")):
        return value.replace(" ", "")  # JSON text: PostgreSQL's json keeps it, spacing aside
    return value


async def fill(path: Path) -> None:
    """A database with something in every table: wallets, both ledgers, events, cooldowns,
    redeems, a refunded and a pending queue item, a queue pause, a stream, a token."""
    clock = FakeClock()
    config = make_config(path, redeems=REDEEMS, database={"url": sqlite_url(path)})
    async with open_test_engine(config, clock) as engine:
        alice, bob = viewer("alice"), viewer("bob", platform="discord")
        await engine.ledger.grant(alice, 1000, reason="test")
        events = EventFactory(clock)
        await engine.streams.go_live("twitch", "streamer")
        for n in range(30):
            await engine.earning.handle(events.chat(alice if n % 2 else bob))
            await engine.earning.handle(events.follow(bob)) if n == 3 else None
            clock.advance(61)  # past the chat cooldown: every line pays
        await engine.ledger.transfer(alice, bob, 100)
        session_id, since = await engine.streams.window()
        bought = []
        for text in ("one", "two"):
            redemption = await engine.redeems.redeem(
                "tts",
                engine.catalog.get("tts"),
                alice,
                text,
                ref=f"buy:{text}",
                stream_session_id=session_id,
                counts_since=since,
            )
            assert redemption.item_id is not None
            bought.append(redemption.item_id)
        await engine.queue.fail(bought[0], "no voice")
        await engine.queue.set_paused("tts", True, by="mod")
        await engine.cooldowns.reserve(
            (alice, "hug", timedelta(minutes=5)), (None, "raffle", timedelta(minutes=5))
        )
        async with engine.db.write() as conn:
            await conn.execute(
                PlatformToken.__table__.insert(),
                [
                    {
                        "platform": "twitch",
                        "channel_id": "42",
                        "access_token_enc": b"\x00ciphertext\xff",
                        "refresh_token_enc": None,
                        "scopes": "chat:read",
                        "expires_at": clock.now(),
                        "created_at": clock.now(),
                        "updated_at": clock.now(),
                    }
                ],
            )


async def test_sqlite_to_postgresql_and_back_keeps_every_row(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source = tmp_path / "source.db"
    await fill(source)
    pg_url = postgres.create_database("copy")
    there = copy(config_file(tmp_path, sqlite_url(source), "source"), pg_url)
    assert there.returncode == 0, there.stderr
    assert there.stdout.splitlines()[-1] == "ok"
    assert "MISMATCH" not in there.stdout
    back = tmp_path / "back.db"
    again = copy(config_file(tmp_path, pg_url, "pg"), sqlite_url(back))
    assert again.returncode == 0, again.stderr
    original = everything(sqlite_url(source))
    assert all(original[name] for name in ("users", "transactions", "queue_items", "events"))
    copied = everything(pg_url)
    for name, rows in original.items():
        for mine, theirs in zip(rows, copied[name], strict=True):
            assert mine == theirs, name
    assert everything(sqlite_url(back)) == original


async def test_a_killed_copy_resumes_without_duplicates(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source = tmp_path / "source.db"
    await fill(source)
    url = sqlite_url(source)
    rows = [
        (f"filler-{n}", "chat", f'{{"n": {n}}}', "2026-03-01 20:00:00.000000")
        for n in range(10_000)
    ]
    with sqlite3.connect(source) as conn:
        conn.executemany(
            "INSERT INTO events (ref, kind, payload, created_at) VALUES (?, ?, ?, ?)", rows
        )
    pg_url = postgres.create_database("resume")
    config = config_file(tmp_path, url, "source")
    proc = await asyncio.create_subprocess_exec(
        *copy_command(config, pg_url, "--batch-size", "50"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while not query(pg_url, "SELECT 1 FROM pg_tables WHERE tablename = 'events'") or (
            query(pg_url, "SELECT count(*) FROM events")[0][0] < 1_000
        ):
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        await proc.wait()
    partial = query(pg_url, "SELECT count(*) FROM events")[0][0]
    assert 0 < partial < 10_000  # killed in the middle
    resumed = copy(config, pg_url)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1] == "ok"
    assert everything(pg_url) == everything(url)
