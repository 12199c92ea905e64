"""Backups and restores on real SQLite files: copies taken while the bot writes, verified
before they count, damaged copies refused, restores that keep the file they replace."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.app import Engine
from pixelbot.app.assembly import open_app
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.backup import list_backups, restore_backup, take_backup, verify_backup
from pixelbot.domain.retention import backups_to_keep
from pixelbot.errors import DatabaseError
from pixelbot.testing import FakePlatform, make_config, open_test_engine, viewer

NOW = utc(2026, 3, 1, 12, 0, 0)
pytestmark = pytest.mark.sqlite_only(
    "backups copy the SQLite file; PostgreSQL's pg_dump backups: test_backups_postgresql.py"
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "pixel.db", backup={"dir": str(tmp_path / "backups")})


def ledger_ids(path: Path) -> set[int]:
    with closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM transactions")}


async def test_a_backup_taken_under_full_write_load_restores_every_committed_row(
    config: Config, tmp_path: Path
) -> None:

    async with open_test_engine(config, FakeClock(NOW)) as engine:
        stop = asyncio.Event()

        async def write(n: int) -> int:
            who, done = viewer(f"writer{n}"), 0
            while not stop.is_set():
                await engine.ledger.grant(who, 1, reason="load")
                done += 1
            return done

        writers = [asyncio.create_task(write(n)) for n in range(20)]
        await asyncio.sleep(0.3)  # the writers are at full speed
        before = ledger_ids(tmp_path / "pixel.db")  # committed before the backup began
        run = await take_backup(engine.db, config.backup, NOW)
        await asyncio.sleep(0.1)
        stop.set()
        written = sum(await asyncio.gather(*writers))

    assert run.file is not None and run.check.ok, run.check.problems
    assert written > len(before) > 0
    target = tmp_path / "restored" / "pixel.db"
    restored = await restore_backup(run.file.path, target, NOW)
    assert restored.replaced is None and restored.check.ok
    assert before <= ledger_ids(target)  # every row committed before the backup began


async def test_a_damaged_backup_fails_verify_and_restore_refuses_it(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    await engine.ledger.grant(viewer("alice"), 50, reason="test")
    run = await take_backup(engine.db, config.backup, NOW)
    assert run.file is not None and (await verify_backup(run.file.path)).ok

    data = bytearray(run.file.path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 20):
        data[offset] ^= 0xFF
    run.file.path.write_bytes(bytes(data))

    check = await verify_backup(run.file.path)
    assert not check.ok
    assert "does not match its checksum" in check.problems[0]
    target = tmp_path / "other.db"
    target.write_bytes(b"the current database")
    with pytest.raises(DatabaseError, match="not a good backup"):
        await restore_backup(run.file.path, target, NOW)
    assert target.read_bytes() == b"the current database"  # untouched


async def test_a_copy_that_does_not_verify_is_kept_aside_never_rotated_in(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    await engine.ledger.grant(viewer("alice"), 50, reason="test")
    with closing(sqlite3.connect(tmp_path / "pixel.db")) as conn:  # a tool outside the bot
        conn.execute("UPDATE users SET points = points + 1")
        conn.commit()
    run = await take_backup(engine.db, config.backup, NOW)
    assert run.file is None and run.rejected is not None and run.rejected.exists()
    assert any("points" in problem for problem in run.check.problems)
    assert list_backups(Path(config.backup.dir)) == []


async def test_a_backup_whose_inside_is_not_a_database_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "pixel-20260301-120000.db.gz"
    fake.write_bytes(gzip.compress(b"not a database at all" * 100))
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    fake.with_name(fake.name + ".sha256").write_text(f"{digest}  {fake.name}\n")
    check = await verify_backup(fake)
    assert not check.ok and "not a readable SQLite database" in check.problems[0]


async def test_restore_refuses_while_a_bot_runs_and_keeps_the_old_file(
    config: Config, tmp_path: Path
) -> None:
    database = tmp_path / "pixel.db"
    async with open_app(config, clock=FakeClock(NOW), platforms=[FakePlatform()]) as app:
        await app.engine.ledger.grant(viewer("alice"), 10, reason="test")
        run = await take_backup(app.engine.db, config.backup, NOW)
        assert run.file is not None
        with pytest.raises(DatabaseError, match="a bot is running"):
            await restore_backup(run.file.path, database, NOW)
        await app.engine.ledger.grant(viewer("alice"), 5, reason="after the backup")

    restored = await restore_backup(run.file.path, database, NOW)  # the bot has stopped
    assert restored.check.ok and restored.replaced is not None
    assert len(ledger_ids(restored.replaced)) == 2  # the file replaced is kept, whole
    assert len(ledger_ids(database)) == 1  # the backup's state


def test_retention_over_a_month_of_hourly_backups_keeps_exactly_what_it_says() -> None:
    kept: set = set()
    start = utc(2026, 3, 2, 0, 0, 0)  # a Monday
    for hour in range(30 * 24):
        kept.add(start + timedelta(hours=hour))
        kept = backups_to_keep(kept, hourly=24, daily=7, weekly=4)
    last = start + timedelta(hours=30 * 24 - 1)
    hourly = {last - timedelta(hours=n) for n in range(24)}
    daily = {last.replace(hour=23) - timedelta(days=n) for n in range(7)}
    # the last one is Tuesday 31 March 23:00; of the 4 weeks, the two newest are covered by
    # the daily copies, so the weekly ones add the last copies of Sundays 22 and 15 March
    weekly = {utc(2026, 3, 22, 23, 0, 0), utc(2026, 3, 15, 23, 0, 0)}
    assert kept == hourly | daily | weekly
    assert len({when.isocalendar()[:2] for when in kept}) == 4


async def test_rotation_removes_copies_and_their_checksums(config: Config, engine: Engine) -> None:
    settings = config.backup.model_copy(
        update={
            "keep": config.backup.keep.model_copy(update={"hourly": 2, "daily": 0, "weekly": 0})
        }
    )
    for hour in range(4):
        run = await take_backup(engine.db, settings, NOW + timedelta(hours=hour))
    assert run.file is not None
    names = sorted(os.listdir(config.backup.dir))
    assert names == [
        "pixel-20260301-140000.db.gz",
        "pixel-20260301-140000.db.gz.sha256",
        "pixel-20260301-150000.db.gz",
        "pixel-20260301-150000.db.gz.sha256",
    ]
