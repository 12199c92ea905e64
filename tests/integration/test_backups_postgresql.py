"""Backups and restores of a PostgreSQL database with the server's own tools (pg_dump,
pg_restore) against the throwaway PostgreSQL server: copies taken while the bot writes,
verified by a restore into a scratch database, damaged copies refused, restores that keep the
database they replace, and a clear error when pg_dump is missing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.config.maintenance import JobSchedule
from pixelbot.db.backup import list_backups, restore_postgresql, take_backup, verify_backup
from pixelbot.db.pgdump import libpq_env
from pixelbot.db.throwaway import PostgresServer
from pixelbot.errors import DatabaseError
from pixelbot.scheduler.jobs import JOBS, Job, JobContext
from pixelbot.scheduler.runner import JobScheduler, last_runs
from pixelbot.testing import make_config, open_test_engine, viewer
from pixelbot.testing_db import query

NOW = utc(2026, 3, 1, 12, 0, 0)
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgresql_only("pg_dump backs up PostgreSQL; SQLite: test_backups.py")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "pixel.db", backup={"dir": str(tmp_path / "backups")})


@pytest.fixture
def aside(postgres: PostgresServer) -> Iterator[list[str]]:
    """Databases a restore moved aside: dropped after the test (the fixture drops the rest)."""
    names: list[str] = []
    yield names
    for name in names:
        postgres.drop_database(name)


def ledger_ids(url: str) -> set[int]:
    return {row[0] for row in query(url, "SELECT id FROM transactions")}


def database_names(postgres: PostgresServer) -> set[str]:
    return set(postgres.psql("SELECT datname FROM pg_database").split())


async def test_a_backup_taken_under_full_write_load_restores_every_committed_row(
    config: Config, postgres: PostgresServer, aside: list[str]
) -> None:
    url = config.database.url
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
        before = ledger_ids(url)  # committed before the backup began
        run = await take_backup(engine.db, config.backup, NOW)
        await asyncio.sleep(0.1)
        stop.set()
        written = sum(await asyncio.gather(*writers))

    assert run.file is not None and run.check.ok, run.check.problems
    assert run.file.path.name == "pixel-20260301-120000.pgdump"
    assert run.figures()["verified"] == "full" and run.check.counts["transactions"] >= len(before)
    assert written > len(before) > 0
    everything = ledger_ids(url)
    scratch_left = {name for name in database_names(postgres) if "_verify_" in name}
    assert scratch_left == set()  # the scratch database of the check is dropped

    restored = await restore_postgresql(run.file.path, url, NOW, Path(config.backup.dir))
    assert restored.replaced_database is not None
    aside.append(restored.replaced_database)
    assert restored.check.ok, restored.check.problems
    assert before <= ledger_ids(url) <= everything  # every row committed before the backup
    kept_url = url.rsplit("/", 1)[0] + "/" + restored.replaced_database
    assert ledger_ids(kept_url) == everything  # the database replaced is kept, whole


async def test_a_damaged_backup_fails_verify_and_restore_refuses_it(config: Config) -> None:
    async with open_test_engine(config, FakeClock(NOW)) as engine:
        await engine.ledger.grant(viewer("alice"), 50, reason="test")
        run = await take_backup(engine.db, config.backup, NOW)
        assert run.file is not None
        assert (await verify_backup(run.file.path, config.database.url)).ok
        await engine.ledger.grant(viewer("alice"), 5, reason="after the backup")
    # the bot has stopped: only the damage stands in the restore's way

    data = bytearray(run.file.path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 20):
        data[offset] ^= 0xFF
    run.file.path.write_bytes(bytes(data))
    check = await verify_backup(run.file.path, config.database.url)
    assert not check.ok and "does not match its checksum" in check.problems[0]
    with pytest.raises(DatabaseError, match="not a good backup"):
        await restore_postgresql(run.file.path, config.database.url, NOW, Path(config.backup.dir))
    assert len(ledger_ids(config.database.url)) == 2  # untouched

    # damage that the checksum does not catch (written with the damage): pg_restore does
    digest = _sha256(run.file.path)
    run.file.path.with_name(run.file.path.name + ".sha256").write_text(f"{digest}  x\n")
    check = await verify_backup(run.file.path, config.database.url)
    assert not check.ok, "a damaged archive passed"
    assert "pg_restore" in check.problems[0] or "pg_dump archive" in check.problems[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_restore_refuses_while_a_bot_is_connected(config: Config, tmp_path: Path) -> None:
    async with open_test_engine(config, FakeClock(NOW)) as engine:
        await engine.ledger.grant(viewer("alice"), 10, reason="test")
        run = await take_backup(engine.db, config.backup, NOW)
        assert run.file is not None
        await engine.ledger.grant(viewer("alice"), 5, reason="after the backup")
        with pytest.raises(DatabaseError, match="a bot is running") as refused:
            await restore_postgresql(run.file.path, config.database.url, NOW, tmp_path)
        assert "pixelbot" in str(refused.value)  # the bot's connections say who they are
    assert len(ledger_ids(config.database.url)) == 2  # nothing restored over it


async def test_without_pg_dump_the_job_fails_clearly_and_the_bot_keeps_running(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def after(context: JobContext) -> dict[str, object]:
        calls.append("after")
        return {}

    every_hour = JobSchedule(every=timedelta(hours=1))
    jobs = {"backup": JOBS["backup"], "after": Job("after", after, "runs", lambda c: every_hour)}
    empty = tmp_path / "bin"
    empty.mkdir()
    async with open_test_engine(config, FakeClock(NOW)) as engine:
        scheduler = JobScheduler(JobContext(engine.db, lambda: engine.config, engine.clock), jobs)
        assert await scheduler.run("backup") is True  # with the tools: a run of the job
        good = (await last_runs(engine.db))["backup"].figures
        assert good is not None and good["ok"] is True and good["verified"] == "full"
        real_restore = shutil.which("pg_restore")
        assert real_restore is not None
        monkeypatch.setenv("PATH", str(empty))  # a machine without PostgreSQL's client tools
        assert await scheduler.run("backup") is False
        assert await scheduler.run("after") is True  # the bot and its other jobs go on

        # a pg_dump older than the server cannot dump it: said as clearly
        old = empty / "pg_dump"
        old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
        old.chmod(0o755)
        (empty / "pg_restore").symlink_to(real_restore)
        with pytest.raises(DatabaseError, match="pg_dump is version 9, older than the"):
            await take_backup(engine.db, config.backup, NOW)
        runs = await last_runs(engine.db)

    assert runs["backup"].outcome == "failed" and runs["backup"].error is not None
    assert "pg_dump is not installed (not on PATH)" in runs["backup"].error
    assert "postgresql-client" in runs["backup"].error
    assert calls == ["after"] and runs["after"].outcome == "ok"
    assert len(list_backups(Path(config.backup.dir))) == 1  # only the run that had pg_dump


async def test_rotation_keeps_the_configured_copies_and_copies_them(
    config: Config, engine: Engine, tmp_path: Path
) -> None:
    await engine.ledger.grant(viewer("alice"), 1, reason="test")
    settings = config.backup.model_copy(
        update={
            "keep": config.backup.keep.model_copy(update={"hourly": 2, "daily": 0, "weekly": 0}),
            "copy_to": str(tmp_path / "second-disk"),
        }
    )
    for hour in range(3):
        run = await take_backup(engine.db, settings, NOW + timedelta(hours=hour))
        assert run.file is not None and run.check.ok
    assert sorted(os.listdir(config.backup.dir)) == [
        "pixel-20260301-130000.pgdump",
        "pixel-20260301-130000.pgdump.sha256",
        "pixel-20260301-140000.pgdump",
        "pixel-20260301-140000.pgdump.sha256",
    ]
    assert [b.taken_at.hour for b in list_backups(Path(config.backup.dir))] == [13, 14]
    copied = tmp_path / "second-disk" / "pixel-20260301-140000.pgdump"
    check = await verify_backup(copied)  # no database named: the archive check, said so
    assert check.ok and check.depth == "archive only" and check.note is not None


async def test_a_role_that_may_not_create_databases_gets_an_archive_check_said_plainly(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    postgres.psql(
        "DO $$ BEGIN CREATE ROLE limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    name = f"limited_{tmp_path.name[-8:]}".replace("-", "_")
    postgres.psql(f'CREATE DATABASE "{name}" OWNER limited')
    try:
        url = postgres.url(name).replace("//pixel@", "//limited@")
        config = make_config(
            tmp_path / "x.db", database={"url": url}, backup={"dir": str(tmp_path / "b")}
        )
        async with open_test_engine(config, FakeClock(NOW)) as engine:
            await engine.ledger.grant(viewer("alice"), 10, reason="test")
            run = await take_backup(engine.db, config.backup, NOW)
        assert run.file is not None and run.check.ok
        figures = run.figures()
        assert figures["verified"] == "archive only"
        assert "may not create databases" in str(figures["note"])
        assert "NOT restored" in str(figures["note"])

        # restore without the right to move the database aside: a safety dump first
        query(url, "UPDATE users SET display_name = 'changed'")
        restored = await restore_postgresql(run.file.path, url, NOW, tmp_path / "b")
        assert restored.replaced_database is None and restored.safety_copy is not None
        assert restored.safety_copy.stat().st_size > 0 and restored.check.ok
        assert query(url, "SELECT count(*) FROM users WHERE display_name = 'changed'") == [(0,)]
    finally:
        postgres.drop_database(name)


def bot(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "bot.py", *map(str, args)],
        cwd=REPO,
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang guard, not a timing assertion
    )


async def test_backup_verify_and_restore_through_the_cli(
    config: Config, tmp_path: Path, aside: list[str]
) -> None:
    url, folder = config.database.url, tmp_path / "backups"
    async with open_test_engine(config, FakeClock(NOW)) as engine:
        await engine.ledger.grant(viewer("alice"), 10, reason="test")
        run = await take_backup(engine.db, config.backup, NOW)  # what `backup now` runs
    assert run.file is not None
    yaml = tmp_path / "config.yaml"
    yaml.write_text(f'database:\n  url: "{url}"\nbackup:\n  dir: "{folder}"\n')

    verified = bot("backup", "verify", run.file.path, "--config", yaml)
    assert (verified.returncode, verified.stdout) == (
        0,
        f"{run.file.path.name}: ok (1 users, 1 transactions, 0 xp_transactions, 0 queue_items)\n",
    )

    query(url, "UPDATE users SET display_name = 'after the backup'")
    restored = bot("backup", "restore", run.file.path, "--config", yaml)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.endswith(f"restored {run.file.path.name}; db verify: ok\n")
    kept = restored.stdout.split("kept as ", 1)[1].split("\n", 1)[0]
    aside.append(kept)
    assert query(url, "SELECT display_name FROM users") != [("after the backup",)]
    assert query(url.rsplit("/", 1)[0] + "/" + kept, "SELECT display_name FROM users") == [
        ("after the backup",)
    ]


async def test_a_copy_that_does_not_verify_is_kept_aside_never_rotated_in(
    config: Config, engine: Engine
) -> None:
    await engine.ledger.grant(viewer("alice"), 50, reason="test")
    query(config.database.url, "UPDATE users SET points = points + 1")  # a tool outside the bot
    run = await take_backup(engine.db, config.backup, NOW)
    assert run.file is None and run.rejected is not None and run.rejected.exists()
    assert run.rejected.parent.name == "rejected" and run.rejected.suffix == ".pgdump"
    assert any("points" in problem for problem in run.check.problems)
    assert list_backups(Path(config.backup.dir)) == []


@pytest.mark.no_database
def test_the_password_reaches_the_tools_in_their_environment_only() -> None:
    url = make_url("postgresql+asyncpg://pixel:s3cret@db.example:6543/pixel?ssl=true")
    env = libpq_env(url)
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == (
        "db.example",
        "6543",
        "pixel",
        "pixel",
    )
    assert env["PGPASSWORD"] == "s3cret" and env["PGSSLMODE"] == "require"
    assert libpq_env(url, "scratch")["PGDATABASE"] == "scratch"
