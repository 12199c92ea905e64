"""The job scheduler on a real database, SQLite file and PostgreSQL: every run recorded, a
failing job never stops the bot or the next run, a run missed while the bot was down is made
up at start. The job that runs is the backup: a compressed copy of the SQLite file, or a
``pg_dump`` archive checked by a restore into a scratch database (``scripts/setup`` installs
PostgreSQL's client tools)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from pixelbot.app import Engine
from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.config.maintenance import JobSchedule
from pixelbot.db.backup import PG_SUFFIX, list_backups
from pixelbot.scheduler.jobs import JOBS, Job, JobContext
from pixelbot.scheduler.runner import JOB_RUNS, JobScheduler, last_runs
from pixelbot.testing import make_config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(
        tmp_path / "pixel.db",
        backup={"dir": str(tmp_path / "backups")},
        schedule={"backup": {"every": "1h"}},
    )


async def test_a_failing_job_is_recorded_and_the_next_one_still_runs(
    config: Config, tmp_path: Path
) -> None:
    calls: list[str] = []

    async def boom(context: JobContext) -> dict[str, object]:
        calls.append("boom")
        raise OSError("the backup disk is gone")

    every_hour = JobSchedule(every=timedelta(hours=1))
    jobs = {"boom": Job("boom", boom, "fails", lambda config: every_hour), "backup": JOBS["backup"]}
    async with Engine.open(config, SystemClock()) as engine:
        scheduler = JobScheduler(JobContext(engine.db, lambda: engine.config, engine.clock), jobs)
        assert await scheduler.run("boom") is False
        assert await scheduler.run("backup") is True
        runs = await last_runs(engine.db)
        kind = ".db.gz" if engine.db.is_sqlite else PG_SUFFIX  # each backend its own way

    assert runs["boom"].outcome == "failed"
    assert runs["boom"].error == "OSError: the backup disk is gone"
    assert runs["boom"].finished_at is not None
    assert runs["backup"].outcome == "ok"
    assert runs["backup"].figures is not None and runs["backup"].figures["ok"] is True
    [taken] = list_backups(tmp_path / "backups")
    assert taken.path.name.endswith(kind)


async def test_a_backup_missed_while_the_bot_was_down_runs_at_start(
    config: Config, tmp_path: Path
) -> None:
    async with Engine.open(config, SystemClock()) as engine:
        long_ago = engine.clock.now() - timedelta(hours=3)
        async with engine.db.write() as conn:
            await conn.execute(
                JOB_RUNS.insert().values(job="backup", started_at=long_ago, outcome="ok")
            )
        scheduler = JobScheduler(JobContext(engine.db, lambda: engine.config, engine.clock))
        await scheduler.start()
        try:
            for _ in range(200):  # a hang guard: the missed run starts at once
                if list_backups(tmp_path / "backups"):
                    break
                await asyncio.sleep(0.05)
            assert "backup" in scheduler.next_runs()  # and it stays on its schedule
        finally:
            await scheduler.stop()
        runs = await last_runs(engine.db)
    assert len(list_backups(tmp_path / "backups")) == 1
    assert runs["backup"].started_at > long_ago


async def test_a_recent_backup_is_not_run_again_at_start(config: Config, tmp_path: Path) -> None:
    async with Engine.open(config, SystemClock()) as engine:
        recently = engine.clock.now() - timedelta(minutes=10)
        async with engine.db.write() as conn:
            await conn.execute(
                JOB_RUNS.insert().values(job="backup", started_at=recently, outcome="ok")
            )
        scheduler = JobScheduler(JobContext(engine.db, lambda: engine.config, engine.clock))
        await scheduler.start()
        await asyncio.sleep(0.3)
        await scheduler.stop()
    assert list_backups(tmp_path / "backups") == []
