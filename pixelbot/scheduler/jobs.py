"""What each scheduled job does. A job is a thin call into a service that the CLI also
reaches (``bot.py backup now`` and the nightly backup are one function), returning the
figures recorded with its run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pixelbot.clock import Clock
from pixelbot.config import Config
from pixelbot.db.backup import take_backup
from pixelbot.db.engine import Database
from pixelbot.errors import DatabaseError

__all__ = ["JOBS", "Job", "JobContext", "backup"]

Figures = dict[str, object]


@dataclass(frozen=True)
class JobContext:
    """What jobs work with: the database, the running config, the clock."""

    db: Database
    settings: Callable[[], Config]
    clock: Clock


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[JobContext], Awaitable[Figures]]
    what: str  # one line for `bot.py jobs`


async def backup(context: JobContext) -> Figures:
    run = await take_backup(context.db, context.settings().backup, context.clock.now())
    if not run.check.ok:
        raise DatabaseError(
            f"the backup copy failed verification and was kept aside in "
            f"{run.rejected}: {'; '.join(run.check.problems)}"
        )
    return run.figures()


JOBS: dict[str, Job] = {
    "backup": Job("backup", backup, "copy the database, verify the copy, rotate old copies"),
}
