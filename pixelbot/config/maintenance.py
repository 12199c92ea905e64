"""Config for the jobs that keep the data safe: ``schedule:``, ``backup:`` and ``retention:``.

Each job runs on an interval (``every: 1h``) or a cron expression (``cron: "30 3 * * *"``, in
the machine's local time), and can be switched off. Backups keep the newest copy of each of
the last N hours, days and weeks. Cleanup deletes what is older than its ``retention:``
(``null`` keeps it forever); ledger rows are never deleted, whatever the setting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from pixelbot.config.types import Count, Duration, Section

__all__ = ["BackupSettings", "JobSchedule", "RetentionSettings", "ScheduleSettings"]


class JobSchedule(Section):
    enabled: bool = True
    every: Duration | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a cron expression ({exc})") from None
        return value

    @field_validator("every")
    @classmethod
    def _every_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if self.enabled and (self.every is None) == (self.cron is None):
            raise ValueError("give either every (e.g. 1h) or cron (e.g. '30 3 * * *'), not both")
        return self


def _hourly() -> JobSchedule:
    return JobSchedule(cron="0 * * * *")


def _nightly() -> JobSchedule:
    return JobSchedule(cron="30 3 * * *")


class ScheduleSettings(Section):
    backup: JobSchedule = Field(default_factory=_hourly)
    cleanup: JobSchedule = Field(default_factory=_nightly)


class RetentionSettings(Section):
    """How long cleanup keeps what it may delete; ``null`` keeps it forever. An event a ledger
    row or a queue item refers to is kept whatever these say."""

    chat_events: Duration | None = timedelta(days=90)  # chat lines, joins and parts
    finished_queue_items: Duration | None = timedelta(days=30)  # done, failed, cancelled
    tts_files: Duration | None = timedelta(days=7)  # rendered WAV files in tts.dir
    job_runs: Duration | None = timedelta(days=30)  # `bot.py jobs` records (each job's last stays)


class BackupKeep(Section):
    """How many copies to keep: the newest of each of the last N hours, days, weeks."""

    hourly: Count = 24
    daily: Count = 7
    weekly: Count = 4


class BackupSettings(Section):
    dir: str = "data/backups"
    keep: BackupKeep = Field(default_factory=BackupKeep)
    copy_to: str | None = None  # a second directory (another disk, a mounted share)
