"""What each scheduled job does, and where its schedule comes from. A job is a thin call into
a service that the CLI also reaches (``bot.py backup now`` and the hourly backup are one
function), returning the figures recorded with its run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pixelbot.clock import Clock
from pixelbot.config import Config
from pixelbot.config.maintenance import JobSchedule
from pixelbot.db.backup import take_backup
from pixelbot.db.cleanup import clean_up
from pixelbot.db.engine import Database
from pixelbot.domain.earning import watch_award
from pixelbot.economy.payouts import Award, Payouts
from pixelbot.economy.presence import PresenceTracker
from pixelbot.economy.streams import StreamSessions
from pixelbot.errors import DatabaseError
from pixelbot.outcomes import Notice, Outcome, Say
from pixelbot.scheduler.timers import TimerBoard

__all__ = ["JOBS", "Job", "JobContext", "backup", "cleanup", "payout", "timers", "tts_folder"]

Figures = dict[str, object]


async def _nobody_listens(outcome: Outcome) -> None:
    return None


@dataclass(frozen=True)
class JobContext:
    """What jobs work with: the database, the running config, the clock, and (in a running
    bot) who is watching, the payouts service and the outcome bus."""

    db: Database
    settings: Callable[[], Config]
    clock: Clock
    presence: PresenceTracker = field(default_factory=PresenceTracker)
    payouts: Payouts | None = None
    publish: Callable[[Outcome], Awaitable[None]] = _nobody_listens
    base_dir: Path | None = None  # where relative paths (tts.dir) resolve; None: the cwd
    platforms: Callable[[], Sequence[str]] = tuple  # the platforms running now, by name
    timers: TimerBoard = field(default_factory=TimerBoard)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[JobContext], Awaitable[Figures]]
    what: str  # one line for `bot.py jobs`
    schedule: Callable[[Config], JobSchedule]
    in_scripts: bool = False  # also runs on a scripted console's simulated clock (/tick)


async def backup(context: JobContext) -> Figures:
    run = await take_backup(context.db, context.settings().backup, context.clock.now())
    if not run.check.ok:
        raise DatabaseError(
            f"the backup copy failed verification and was kept aside in "
            f"{run.rejected}: {'; '.join(run.check.problems)}"
        )
    return run.figures()


def tts_folder(config: Config, base_dir: Path | None) -> Path:
    folder = Path(config.tts.dir)
    return folder if folder.is_absolute() else (base_dir or Path.cwd()) / folder


async def cleanup(context: JobContext) -> Figures:
    config = context.settings()
    report = await clean_up(
        context.db,
        config.retention,
        context.clock.now(),
        tts_dir=tts_folder(config, context.base_dir),
    )
    if not report.ok:
        problems = "; ".join(report.figures()["violations"])
        raise DatabaseError(f"db verify failed after the cleanup: {problems}")
    return report.figures()


async def payout(context: JobContext) -> Figures:
    """Pay the viewers present for the last full interval of the live stream (tick ``n`` is
    the ``n``-th full interval since it went live; each is paid once)."""
    session = await StreamSessions(context.db, context.clock).current()
    if session is None or context.payouts is None:
        return {"live": False}
    config = context.settings()
    watch = config.economy.earn.watch
    now = context.clock.now()
    tick = int((now - session.started_at) / watch.every)
    if tick < 1:
        return {"live": True, "tick": 0, "paid": 0}  # not a full interval yet
    ignored = set(config.economy.ignore)  # other bots in the chatter list earn nothing
    awards = []
    for watcher in context.presence.watching(now, watch.active_within):
        if watcher.viewer.login.lower() in ignored:
            continue
        points, xp = watch_award(watch.points, watch.xp, watcher.viewer.roles, watch.multipliers)
        if points or xp:
            awards.append(Award(watcher.viewer, points, xp))
    paid = await context.payouts.pay_tick(session.id, tick, awards)
    if not paid.already_paid and paid.viewers:
        currency = config.bot.currency
        noun = currency.singular if paid.points == 1 else currency.plural
        who = "viewer" if paid.viewers == 1 else "viewers"
        await context.publish(
            Notice(
                "payout",
                f"tick {tick}: {paid.points:,} {noun} and {paid.xp:,} XP to "
                f"{paid.viewers} {who} watching",
            )
        )
        for level_up in paid.level_ups:
            await context.publish(Say(session.platform, "", level_up.announcement()))
    return {
        "live": True,
        "tick": tick,
        "paid": paid.viewers,
        "points": paid.points,
        "xp": paid.xp,
        "already_paid": paid.already_paid,
    }


async def timers(context: JobContext) -> Figures:
    """Say the ``timers:`` lines that are due, on each running platform's default channel."""
    config = context.settings()
    live = await StreamSessions(context.db, context.clock).current() is not None
    due = context.timers.due(
        config.timers,
        context.clock.now(),
        live=live,
        platforms=context.platforms(),
        lines_on=context.presence.lines_on,
    )
    for line in due:
        await context.publish(Say(line.platform, "", line.text))
    return {"live": live, "said": len(due)}


def _timers_schedule(config: Config) -> JobSchedule:
    return JobSchedule(
        enabled=any(timer.enabled for timer in config.timers), every=timedelta(minutes=1)
    )


def _watch_schedule(config: Config) -> JobSchedule:
    watch = config.economy.earn.watch
    return JobSchedule(enabled=bool(watch.points or watch.xp), every=watch.every)


JOBS: dict[str, Job] = {
    "backup": Job(
        "backup",
        backup,
        "copy the database, verify the copy, rotate old copies",
        lambda config: config.schedule.backup,
    ),
    "cleanup": Job(
        "cleanup",
        cleanup,
        "delete old chat events, finished queue items, TTS files; reclaim the space",
        lambda config: config.schedule.cleanup,
    ),
    "payout": Job(
        "payout",
        payout,
        "pay the viewers watching the live stream (economy.earn.watch)",
        _watch_schedule,
        in_scripts=True,
    ),
    "timers": Job(
        "timers",
        timers,
        "say the timers: lines that are due (timers: in config.yaml)",
        _timers_schedule,
        in_scripts=True,
    ),
}
