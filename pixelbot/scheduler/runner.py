"""Runs the scheduled jobs on time and records each run.

Every enabled job in ``schedule:`` gets an APScheduler trigger (``every`` or ``cron``) with
``coalesce`` (a backlog of missed runs is one run) and ``max_instances=1`` (a job never runs
twice at once). A run is recorded in ``job_runs`` when it starts and when it ends, with its
figures or its error; a failing job logs one line and simply runs again at its next time. A
job whose next time after its last recorded run has already passed (the bot was down) runs
once at start.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import insert, select, update

from pixelbot.config.maintenance import JobSchedule
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.scheduler.jobs import JOBS, Job, JobContext

__all__ = ["JobScheduler", "LastRun", "last_runs", "trigger_for"]

log = logging.getLogger(__name__)

JOB_RUNS = Base.metadata.tables["job_runs"]


def trigger_for(schedule: JobSchedule) -> BaseTrigger:
    if schedule.every is not None:
        return IntervalTrigger(seconds=schedule.every.total_seconds())
    assert schedule.cron is not None  # the config requires one of the two
    return CronTrigger.from_crontab(schedule.cron)


class LastRun:
    def __init__(self, row: Any) -> None:
        self.started_at: datetime = row.started_at
        self.finished_at: datetime | None = row.finished_at
        self.outcome: str = row.outcome
        self.figures: dict[str, Any] | None = row.figures
        self.error: str | None = row.error


async def last_runs(db: Database) -> dict[str, LastRun]:
    """The latest recorded run of each job."""
    async with db.read() as conn:
        rows = await conn.execute(select(JOB_RUNS).order_by(JOB_RUNS.c.id))
        return {row.job: LastRun(row) for row in rows}


class JobScheduler:
    def __init__(self, context: JobContext, jobs: dict[str, Job] | None = None) -> None:
        self._context = context
        self._jobs = jobs or JOBS
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
        )

    def schedules(self) -> dict[str, JobSchedule]:
        settings = self._context.settings().schedule
        return {name: getattr(settings, name) for name in self._jobs if hasattr(settings, name)}

    async def start(self) -> None:
        now = self._context.clock.now()
        previous = await last_runs(self._context.db)
        for name, schedule in self.schedules().items():
            if not schedule.enabled:
                continue
            trigger = trigger_for(schedule)
            self._scheduler.add_job(self.run, trigger, args=[name], id=name, name=name)
            last = previous.get(name)
            if last is not None and _is_due(schedule, last.started_at, now):
                log.info("the %s job was missed while the bot was down; running it now", name)
                self._scheduler.add_job(self.run, args=[name], id=f"{name}-missed")
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    async def run(self, name: str) -> bool:
        """Run one job now and record it. True if it succeeded; never raises."""
        job = self._jobs[name]
        clock, db = self._context.clock, self._context.db
        async with db.write() as conn:
            run_id = (
                await conn.execute(
                    insert(JOB_RUNS).values(job=name, started_at=clock.now(), outcome="running")
                )
            ).inserted_primary_key
        assert run_id is not None
        outcome: dict[str, Any]
        try:
            figures = await job.run(self._context)
            outcome = {"outcome": "ok", "figures": figures}
        except Exception as exc:  # one failing job never stops the bot or the other jobs
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("the %s job failed: %s", name, reason, exc_info=log.isEnabledFor(10))
            outcome = {"outcome": "failed", "error": reason}
        async with db.write() as conn:
            await conn.execute(
                update(JOB_RUNS)
                .where(JOB_RUNS.c.id == run_id[0])
                .values(finished_at=clock.now(), **outcome)
            )
        return bool(outcome["outcome"] == "ok")


def _is_due(schedule: JobSchedule, last: datetime, now: datetime) -> bool:
    """Whether a run fell due after ``last`` and before ``now`` (so it was missed)."""
    if schedule.every is not None:
        return last + schedule.every <= now
    following = trigger_for(schedule).get_next_fire_time(None, last + timedelta(seconds=1))
    return following is not None and following <= now
