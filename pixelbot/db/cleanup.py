"""Cleanup: delete what has outlived its ``retention:``, then let the database reuse the space.

One function, ``clean_up``, serves both the nightly ``cleanup`` job and ``bot.py cleanup``:

1. expired cooldowns (they refuse nothing any more), and ``!link`` codes that ran out unused
   (a code lives 10 minutes; a used one stays: its link's ledger rows are named after its id,
   ``link:<id>:out`` and ``:in``, and any code such a row names stays whatever it says);
2. chat-event rows (chat lines, joins, parts, deleted-message notes) older than
   ``retention.chat_events``, except any event something refers to (``_referenced``);
3. finished queue items (done, failed, cancelled) older than
   ``retention.finished_queue_items``, except those a redeem's per-stream limit still counts
   and those an OBS undo names;
4. rendered TTS files (``tts-*.wav`` in ``tts.dir``) older than ``retention.tts_files``;
   records of job runs older than ``retention.job_runs`` (the timers job alone records one a
   minute), except each job's latest, which ``bot.py jobs`` and the missed-run check read;
5. SQLite: ``PRAGMA optimize`` and an incremental vacuum, which gives the freed pages back
   to the disk; PostgreSQL: ``VACUUM (ANALYZE)`` of the tables it deleted from.

The ledgers (``transactions``, ``xp_transactions``) are never touched, nor any event whose ref
a ledger row carries (a paid chat line's ref IS its ledger row's ref) or that a redeem names
(``redeem:<ref of the line that asked>``, which its queue item hangs off). ``db verify`` runs
afterwards and the report carries its result.

An incremental vacuum needs the file to have been created with ``auto_vacuum=INCREMENTAL``,
which ``engine.py`` now asks for on every new file. A file from before that keeps its freed
pages for reuse (it grows no further) until ``bot.py cleanup --vacuum`` rewrites it once, with
the bot stopped (a full ``VACUUM`` needs the file to itself).

Deletes run in chunks of ``CHUNK`` rows, one short write transaction each, so a busy chat
waits at most one chunk. ``dry_run`` counts the same rows and deletes nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.config.maintenance import RetentionSettings
from pixelbot.db.engine import Database
from pixelbot.db.lock import DatabaseLock
from pixelbot.db.models import Base
from pixelbot.db.verify import VerifyReport, verify

__all__ = ["CHAT_EVENT_KINDS", "CHUNK", "CleanupReport", "clean_up", "vacuum_fully"]

CHUNK = 5_000
# Chat traffic: many rows, no money. Every other kind of event (follows, subs, tips, redeems,
# awards, payouts, stream changes) is the timeline of what was paid and is kept.
CHAT_EVENT_KINDS = ("chat", "presence", "presence_left", "message_deleted")
FINISHED = ("done", "failed", "cancelled")
REDEEM_PREFIX = "redeem:"

EVENTS: Table = Base.metadata.tables["events"]
TRANSACTIONS: Table = Base.metadata.tables["transactions"]
XP_TRANSACTIONS: Table = Base.metadata.tables["xp_transactions"]
COOLDOWNS: Table = Base.metadata.tables["cooldowns"]
LINK_CODES: Table = Base.metadata.tables["link_codes"]
QUEUE_ITEMS: Table = Base.metadata.tables["queue_items"]
STREAM_SESSIONS: Table = Base.metadata.tables["stream_sessions"]
OBS_UNDOS: Table = Base.metadata.tables["obs_undos"]
JOB_RUNS: Table = Base.metadata.tables["job_runs"]


@dataclass
class CleanupReport:
    dry_run: bool
    removed: dict[str, int] = field(default_factory=dict)  # what -> rows or files
    bytes_freed: dict[str, int] = field(default_factory=dict)  # database, tts_files
    vacuum: str = ""  # what the space step did, or why it was skipped
    verified: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return self.verified is None or self.verified.ok

    def figures(self) -> dict[str, Any]:
        """For the job's record and ``--json``."""
        return {
            "dry_run": self.dry_run,
            "removed": self.removed,
            "bytes_freed": self.bytes_freed,
            "vacuum": self.vacuum,
            "verified": None if self.verified is None else self.verified.ok,
            "violations": []
            if self.verified is None
            else [f"{v.check}: {v.detail}" for v in self.verified.violations],
        }


async def clean_up(
    db: Database,
    retention: RetentionSettings,
    now: datetime,
    *,
    tts_dir: Path | None = None,
    dry_run: bool = False,
) -> CleanupReport:
    """Delete what outlived its retention (or, ``dry_run``, count it), reclaim the space,
    and verify the database."""
    report = CleanupReport(dry_run)
    before = await _database_bytes(db)
    report.removed["cooldowns"] = await _purge(
        db, COOLDOWNS, COOLDOWNS.c.expires_at <= now, dry_run
    )
    report.removed["link_codes"] = await _purge(db, LINK_CODES, _dead_codes(now), dry_run)
    report.removed["chat_events"] = (
        0
        if retention.chat_events is None
        else await _purge(db, EVENTS, _old_chat(now - retention.chat_events), dry_run)
    )
    report.removed["queue_items"] = (
        0
        if retention.finished_queue_items is None
        else await _purge(
            db, QUEUE_ITEMS, await _old_items(db, now - retention.finished_queue_items), dry_run
        )
    )
    report.removed["job_runs"] = (
        0
        if retention.job_runs is None
        else await _purge(db, JOB_RUNS, _old_runs(now - retention.job_runs), dry_run)
    )
    files, freed = 0, 0
    if tts_dir is not None and retention.tts_files is not None:
        cutoff = (now - retention.tts_files).timestamp()
        files, freed = await asyncio.to_thread(_old_tts_files, tts_dir, cutoff, dry_run)
    report.removed["tts_files"] = files
    report.bytes_freed["tts_files"] = freed
    if dry_run:
        report.vacuum = "dry run: nothing deleted, nothing vacuumed"
        report.bytes_freed["database"] = 0
    else:
        deleted_from = [
            table.name
            for table, key in (
                (COOLDOWNS, "cooldowns"),
                (LINK_CODES, "link_codes"),
                (EVENTS, "chat_events"),
                (QUEUE_ITEMS, "queue_items"),
                (JOB_RUNS, "job_runs"),
            )
            if report.removed[key]
        ]
        report.vacuum = await _reclaim(db, deleted_from)
        report.bytes_freed["database"] = max(0, before - await _database_bytes(db))
    report.verified = await verify(db)
    return report


# -- what may go -------------------------------------------------------------------------------


def _referenced(ref: ColumnElement[Any]) -> ColumnElement[bool]:
    """Something refers to the event with this ref: a ledger row carries it, or a redeem
    (and so a queue item and perhaps a charge) names it as the line that asked."""
    asked = literal(REDEEM_PREFIX) + ref
    return or_(
        exists().where(TRANSACTIONS.c.ref == ref),
        exists().where(XP_TRANSACTIONS.c.ref == ref),
        exists().where(TRANSACTIONS.c.ref == asked),
        exists(select(literal(1)).select_from(_REDEEMS).where(_REDEEMS.c.ref == asked)),
    )


_REDEEMS = EVENTS.alias("redeem_events")


def _dead_codes(now: datetime) -> ColumnElement[bool]:
    """``!link`` codes that ran out unused and that nothing names: no ledger row carries
    ``link:<id>:out``/``:in`` and no event ``link:<id>`` (a used code always has them; the
    check does not trust ``used_at`` alone). Every lookup is by a unique ref: an index probe."""
    link = literal("link:") + cast(LINK_CODES.c.id, String)
    named = [
        exists().where(ledger.c.ref.in_([link + ":out", link + ":in"]))
        for ledger in (TRANSACTIONS, XP_TRANSACTIONS)
    ]
    return and_(
        LINK_CODES.c.expires_at <= now,
        LINK_CODES.c.used_at.is_(None),
        ~or_(*named, exists().where(EVENTS.c.ref == link)),
    )


def _old_chat(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        EVENTS.c.kind.in_(CHAT_EVENT_KINDS),
        EVENTS.c.created_at < cutoff,
        or_(EVENTS.c.ref.is_(None), ~_referenced(EVENTS.c.ref)),
    )


async def _old_items(db: Database, cutoff: datetime) -> ColumnElement[bool]:
    """Finished items before ``cutoff`` that no per-stream limit counts any more: those of a
    stream that has ended, or bought offline before the last stream ended (items bought
    offline since then count towards the offline limits, ``store._load_redeem_counts``)."""
    async with db.read() as conn:
        last_end = (await conn.execute(select(func.max(STREAM_SESSIONS.c.ended_at)))).scalar()
    ended = exists().where(
        STREAM_SESSIONS.c.id == QUEUE_ITEMS.c.stream_session_id,
        STREAM_SESSIONS.c.ended_at.is_not(None),
    )
    offline_before = (
        and_(QUEUE_ITEMS.c.stream_session_id.is_(None), QUEUE_ITEMS.c.created_at < last_end)
        if last_end is not None
        else literal(False)
    )
    return and_(
        QUEUE_ITEMS.c.status.in_(FINISHED),
        QUEUE_ITEMS.c.finished_at < cutoff,
        or_(and_(QUEUE_ITEMS.c.stream_session_id.is_not(None), ended), offline_before),
        ~exists().where(OBS_UNDOS.c.item_id == QUEUE_ITEMS.c.id),
    )


def _old_runs(cutoff: datetime) -> ColumnElement[bool]:
    latest = select(func.max(_LATEST_RUNS.c.id)).group_by(_LATEST_RUNS.c.job)
    return and_(
        JOB_RUNS.c.started_at < cutoff,
        JOB_RUNS.c.outcome != "running",
        JOB_RUNS.c.id.not_in(latest.scalar_subquery()),
    )


_LATEST_RUNS = JOB_RUNS.alias("latest_runs")


async def _purge(db: Database, table: Table, doomed: ColumnElement[bool], dry_run: bool) -> int:
    """Delete (or count) the rows of ``table`` that match, a chunk per transaction."""
    if dry_run:
        async with db.read() as conn:
            count = await conn.execute(select(func.count()).select_from(table).where(doomed))
            return int(count.scalar_one())
    removed, after = 0, 0
    while True:
        async with db.write() as conn:
            ids = await _next_chunk(conn, table, doomed, after)
            if not ids:
                return removed
            # (the condition is checked again inside the delete, in the same transaction)
            result = await conn.execute(
                delete(table).where(table.c.id.between(ids[0], ids[-1]), doomed)
            )
            removed += int(result.rowcount or 0)
            after = ids[-1]


async def _next_chunk(
    conn: AsyncConnection, table: Table, doomed: ColumnElement[bool], after: int
) -> list[int]:
    rows = await conn.execute(
        select(table.c.id).where(table.c.id > after, doomed).order_by(table.c.id).limit(CHUNK)
    )
    return [int(row_id) for row_id in rows.scalars()]


def _old_tts_files(directory: Path, cutoff: float, dry_run: bool) -> tuple[int, int]:
    """(files, bytes) of the rendered TTS files last written before ``cutoff``."""
    files = freed = 0
    for path in _tts_files(directory):
        try:
            stat = path.stat()
            if stat.st_mtime >= cutoff:
                continue
            if not dry_run:
                path.unlink()
        except FileNotFoundError:  # gone meanwhile (the TTS worker prunes too)
            continue
        files += 1
        freed += stat.st_size
    return files, freed


def _tts_files(directory: Path) -> Iterable[Path]:
    return sorted(directory.glob("tts-*.wav")) if directory.is_dir() else []


# -- giving the space back ---------------------------------------------------------------------


async def _database_bytes(db: Database) -> int:
    async with db.read() as conn:
        if db.is_sqlite:
            pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
            size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
            return int(pages) * int(size)
        found = await conn.exec_driver_sql("SELECT pg_database_size(current_database())")
        return int(found.scalar_one())


async def _reclaim(db: Database, tables: list[str]) -> str:
    if db.is_sqlite:
        path = db.sqlite_path
        if path is None:
            return "skipped: an in-memory database"
        timeout_ms = int(db.faults.busy_timeout.total_seconds() * 1000)
        return await asyncio.to_thread(_sqlite_reclaim, path, timeout_ms)
    if not tables:
        return "PostgreSQL: nothing deleted, nothing to vacuum"
    async with db.engine.connect() as conn:
        # VACUUM cannot run inside a transaction block.
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        quote = conn.dialect.identifier_preparer.quote
        for name in tables:
            await conn.exec_driver_sql(f"VACUUM (ANALYZE) {quote(name)}")
    return (
        f"PostgreSQL: VACUUM (ANALYZE) {', '.join(tables)} "
        "(the space is reused by new rows; only VACUUM FULL would return it to the disk)"
    )


def _sqlite_reclaim(path: Path, timeout_ms: int) -> str:
    """``PRAGMA optimize`` and, where the file allows it, an incremental vacuum, on a
    connection of our own. ``executescript`` steps each statement to the end: stepped once
    (as ``execute`` does), ``incremental_vacuum`` frees a single page."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(f"PRAGMA busy_timeout={timeout_ms}")
        connection.executescript("PRAGMA optimize;")
        mode = int(connection.execute("PRAGMA auto_vacuum").fetchone()[0])
        free = int(connection.execute("PRAGMA freelist_count").fetchone()[0])
        if mode != 2:
            return (
                f"optimized; incremental vacuum skipped: this file was created without "
                f"auto_vacuum=INCREMENTAL, so its {free} free pages are reused, not given back "
                "(run `bot.py cleanup --vacuum` once, with the bot stopped, to convert it)"
            )
        connection.executescript("PRAGMA incremental_vacuum;")
        return f"optimized; incremental vacuum gave back {free} free pages"
    finally:
        connection.close()


async def vacuum_fully(db: Database) -> str:
    """Rewrite a SQLite file with ``auto_vacuum=INCREMENTAL`` (a full ``VACUUM``), so that
    cleanups can give freed space back from then on. Refused while a bot runs on the file."""
    path = db.sqlite_path
    if path is None:
        return "nothing to do: a full VACUUM here is only for SQLite files"
    lock = DatabaseLock(path)
    lock.hold_exclusive("rewrite the database file (cleanup --vacuum)")
    try:
        before = await _database_bytes(db)
        await db.engine.dispose()  # no pooled connection may hold the file during VACUUM
        await asyncio.to_thread(_sqlite_vacuum, path)
        after = await _database_bytes(db)
    finally:
        lock.release()
    return f"rewrote {path} with auto_vacuum=INCREMENTAL: {before:,} -> {after:,} bytes"


def _sqlite_vacuum(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.execute("VACUUM")
    finally:
        connection.close()
