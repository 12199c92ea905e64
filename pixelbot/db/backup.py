"""Backups of a SQLite database that are proven good before they count, and restores that
never lose the file they replace.

A backup (``bot.py backup now`` and the scheduled ``backup`` job are this one function):

1. copies the database online with SQLite's backup API in one step, which reads one
   consistent snapshot while the bot keeps writing (in WAL mode writers are not blocked);
2. verifies the copy: ``PRAGMA integrity_check`` and the full ``db verify``;
3. compresses it under a temporary name, then renames it (a crash never leaves a half file
   that looks whole), and writes its SHA-256 beside it (``NAME.sha256``);
4. rotates: keeps the newest copy of each of the last N hours, days and weeks. A copy that
   fails verification goes to ``rejected/`` and is reported, never rotated in as good.

``restore`` refuses while a bot runs on the database, verifies the backup first, moves the
current file aside (it is never deleted), puts the copy in place and verifies the result.

On PostgreSQL the same steps use the server's own tools (``db/pgdump.py``): the copy is
``pg_dump --format=custom`` (``pixel-<time>.pgdump``, already compressed); it is verified with
``pg_restore --list`` and a restore into a scratch database that ``db verify`` checks (only the
archive check where the role may not create databases, and the run says so); checksum, rename,
rotation, ``copy_to`` and ``rejected/`` are the same as for SQLite.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL

from pixelbot.config.maintenance import BackupSettings
from pixelbot.db import pgdump
from pixelbot.db.engine import Database
from pixelbot.db.lock import DatabaseLock
from pixelbot.db.verify import verify
from pixelbot.domain.retention import backups_to_keep
from pixelbot.errors import DatabaseError

__all__ = [
    "BackupCheck",
    "BackupFile",
    "BackupRun",
    "list_backups",
    "restore_backup",
    "restore_postgresql",
    "take_backup",
    "verify_backup",
]

_NAME = re.compile(r"^pixel-(\d{8}-\d{6})\.(?:db\.gz|pgdump)$")
PG_SUFFIX = ".pgdump"
_ALONE_CHECKS, _ALONE_WAIT = 5, 0.2  # seconds: how long a restore waits for a closing session
_STAMP = "%Y%m%d-%H%M%S"
REJECTED = "rejected"


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken_at: datetime
    size: int


@dataclass
class BackupCheck:
    """What verifying one copy found (``ok`` when nothing)."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # How far the check went: "full" (the data inside passed db verify), or "archive only"
    # (a PostgreSQL archive that could be read but not restored to be verified; see ``note``).
    depth: str = "full"
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class BackupRun:
    file: BackupFile | None  # None when the copy failed verification
    check: BackupCheck
    removed: list[Path] = field(default_factory=list)  # rotated out
    rejected: Path | None = None
    copied_to: Path | None = None

    def figures(self) -> dict[str, object]:
        return {
            "file": None if self.file is None else self.file.path.name,
            "bytes": None if self.file is None else self.file.size,
            "ok": self.check.ok,
            "problems": self.check.problems,
            "verified": self.check.depth,
            **({"note": self.check.note} if self.check.note else {}),
            "rotated_out": [path.name for path in self.removed],
        }


# ----------------------------------------------------------------------------- taking


async def take_backup(db: Database, settings: BackupSettings, now: datetime) -> BackupRun:
    """Copy, verify, compress, checksum and rotate (see the module docstring)."""
    if db.url.get_backend_name() == "postgresql":
        return await _take_pg_backup(db, settings, now)
    source = _sqlite_file(db)
    folder = Path(settings.dir)
    name = f"pixel-{now.astimezone(UTC):{_STAMP}}.db.gz"
    work = await asyncio.to_thread(_work_dir, folder)
    try:
        copy = work / "pixel.db"
        await asyncio.to_thread(_copy_online, source, copy)
        check = await _check_database_file(copy)
        return await asyncio.to_thread(_store, copy, folder / name, check, settings, now)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _take_pg_backup(db: Database, settings: BackupSettings, now: datetime) -> BackupRun:
    pgdump.tool("pg_dump")  # a missing tool is one clear error, before anything is written
    pgdump.tool("pg_restore")
    folder = Path(settings.dir)
    name = f"pixel-{now.astimezone(UTC):{_STAMP}}{PG_SUFFIX}"
    work = await asyncio.to_thread(_work_dir, folder)
    try:
        archive = work / name  # the temporary name: inside a hidden folder of backup.dir
        await pgdump.dump(db, archive)
        check = await _check_archive(archive, db.url)
        return await asyncio.to_thread(_store_archive, archive, folder / name, check, settings, now)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _check_archive(archive: Path, url: str | URL | None) -> BackupCheck:
    """``pg_restore --list``, then the scratch-database restore and ``db verify`` when a
    PostgreSQL server is at hand (``url``); the check says how far it went."""
    problems = await pgdump.archive_problems(archive)
    if problems:
        return BackupCheck(problems)
    server = None if url is None else pgdump.postgres_url(url)
    if server is None:
        note = "archive check only (pg_restore --list): no PostgreSQL database is configured"
        return BackupCheck(depth="archive only", note=note)
    scratch = await pgdump.check_in_scratch_database(server, archive)
    if not scratch.restored:
        return BackupCheck(depth="archive only", note=scratch.note)
    return BackupCheck(scratch.problems, scratch.counts)


def _store_archive(
    archive: Path, target: Path, check: BackupCheck, settings: BackupSettings, now: datetime
) -> BackupRun:
    if not check.ok:
        rejected = target.parent / REJECTED / target.name
        rejected.parent.mkdir(exist_ok=True)
        os.replace(archive, rejected)
        return BackupRun(None, check, rejected=rejected)
    with archive.open("rb") as file:
        os.fsync(file.fileno())
    _write_checksum(target, _sha256(archive))  # first: a copy without its checksum never counts
    os.replace(archive, target)  # atomic: the name appears only once it is whole
    run = BackupRun(BackupFile(target, now, target.stat().st_size), check)
    if settings.copy_to:
        run.copied_to = _copy_to(target, Path(settings.copy_to))
    run.removed = _rotate(target.parent, settings)
    return run


def _work_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder, prefix=".backup-"))


def _store(
    copy: Path, target: Path, check: BackupCheck, settings: BackupSettings, now: datetime
) -> BackupRun:
    compressed = copy.with_name(target.name)
    digest = _compress(copy, compressed)
    if not check.ok:
        rejected = target.parent / REJECTED / target.name
        rejected.parent.mkdir(exist_ok=True)
        os.replace(compressed, rejected)
        return BackupRun(None, check, rejected=rejected)
    _write_checksum(target, digest)  # first: a copy without its checksum never counts
    os.replace(compressed, target)  # atomic: the name appears only once it is whole
    run = BackupRun(BackupFile(target, now, target.stat().st_size), check)
    if settings.copy_to:
        run.copied_to = _copy_to(target, Path(settings.copy_to))
    run.removed = _rotate(target.parent, settings)
    return run


def _sqlite_file(db: Database) -> Path:
    path = db.sqlite_path
    if path is None:
        raise DatabaseError(
            "backups here copy SQLite files; for PostgreSQL use pg_dump (the server's own tool)"
        )
    return path


def _copy_online(source: Path, target: Path) -> None:
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)  # pages=-1: one step, one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file


def _compress(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as raw, target.open("wb") as out:
        with gzip.GzipFile(fileobj=_HashingWriter(out, digest), mode="wb", mtime=0) as zipped:
            shutil.copyfileobj(raw, zipped, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


class _HashingWriter:
    """A file wrapper that hashes what is written through it."""

    def __init__(self, out: object, digest: hashlib._Hash) -> None:
        self._out = out
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._out.write(data)  # type: ignore[attr-defined, no-any-return]

    def flush(self) -> None:
        self._out.flush()  # type: ignore[attr-defined]


def _checksum_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".sha256")


def _write_checksum(backup: Path, digest: str) -> None:
    _checksum_path(backup).write_text(f"{digest}  {backup.name}\n", encoding="utf-8")


def _copy_to(backup: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{backup.name}.part"
    shutil.copyfile(backup, temporary)
    shutil.copyfile(_checksum_path(backup), _checksum_path(folder / backup.name))
    os.replace(temporary, folder / backup.name)
    return folder / backup.name


def _rotate(folder: Path, settings: BackupSettings) -> list[Path]:
    backups = list_backups(folder)
    keep = settings.keep
    kept = backups_to_keep(
        (b.taken_at for b in backups), hourly=keep.hourly, daily=keep.daily, weekly=keep.weekly
    )
    removed = []
    for backup in backups:
        if backup.taken_at not in kept:
            backup.path.unlink()
            _checksum_path(backup.path).unlink(missing_ok=True)
            removed.append(backup.path)
    return removed


def list_backups(folder: Path) -> list[BackupFile]:
    """The backups in ``folder``, oldest first (rejected copies are not listed)."""
    found = []
    for path in folder.glob("pixel-*") if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match:
            taken = datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
            found.append(BackupFile(path, taken, path.stat().st_size))
    return sorted(found, key=lambda backup: backup.taken_at)


# ----------------------------------------------------------------------------- checking


async def verify_backup(backup: Path, database_url: str | None = None) -> BackupCheck:
    """Checksum, then decompress and check the database inside (integrity + ``db verify``).

    A PostgreSQL archive (``.pgdump``): checksum, ``pg_restore --list``, and, when
    ``database_url`` names a PostgreSQL database, a restore into a scratch database beside it
    that ``db verify`` checks."""
    problem = await asyncio.to_thread(_checksum_problem, backup)
    if problem is not None:
        return BackupCheck([problem])
    if backup.name.endswith(PG_SUFFIX):
        return await _check_archive(backup, database_url)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pixel-backup-"))
    try:
        copy = work / "pixel.db"
        problem = await asyncio.to_thread(_unpack, backup, copy)
        if problem is not None:
            return BackupCheck([problem])
        return await _check_database_file(copy)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _checksum_problem(backup: Path) -> str | None:
    if not backup.is_file():
        return f"{backup} does not exist"
    expected = _read_checksum(backup)
    if expected is None:
        return f"{backup.name} has no readable checksum file beside it"
    if _sha256(backup) != expected:
        return f"{backup.name} does not match its checksum: the file is damaged"
    return None


def _read_checksum(backup: Path) -> str | None:
    try:
        text = _checksum_path(backup).read_text(encoding="utf-8")
    except OSError:
        return None
    digest = text.split()[0] if text.split() else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(backup: Path, target: Path) -> str | None:
    """Decompress ``backup`` into ``target``; a problem, as text, if it cannot be."""
    try:
        with gzip.open(backup, "rb") as zipped, target.open("wb") as out:
            shutil.copyfileobj(zipped, out, 1 << 20)
    except (OSError, EOFError) as exc:
        return f"{backup.name} cannot be decompressed: {exc}"
    return None


def _integrity_problems(path: Path) -> list[str]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database: {exc}"]
    return [] if rows == ["ok"] else [f"integrity_check: {row}" for row in rows[:5]]


async def _check_database_file(path: Path) -> BackupCheck:
    check = BackupCheck()
    problems = await asyncio.to_thread(_integrity_problems, path)
    if problems:
        return BackupCheck(problems)
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        report = await verify(database)
    except Exception as exc:  # a copy of something that is not our database
        return BackupCheck([f"db verify could not read it: {type(exc).__name__}: {exc}"])
    finally:
        await database.dispose()
    check.counts = report.counts
    check.problems = [f"{v.check}: {v.detail}" for v in report.violations]
    return check


# ----------------------------------------------------------------------------- restoring


@dataclass(frozen=True)
class Restored:
    replaced: Path | None  # where the file that was there went
    check: BackupCheck


async def restore_backup(backup: Path, database: Path, now: datetime) -> Restored:
    """Put ``backup`` in place of ``database`` (see the module docstring). DatabaseError if
    a bot runs on it or the backup is not good; then nothing has changed."""
    if backup.name.endswith(PG_SUFFIX):
        raise DatabaseError(
            f"{backup.name} is a PostgreSQL backup (pg_dump); it restores into a PostgreSQL "
            "database, not the SQLite file"
        )
    lock = DatabaseLock(database)
    lock.hold_exclusive("restore a backup")
    try:
        check = await verify_backup(backup)
        if not check.ok:
            raise DatabaseError(f"{backup.name} is not a good backup: {'; '.join(check.problems)}")
        replaced = await asyncio.to_thread(_put_in_place, backup, database, now)
        return Restored(replaced, await _check_database_file(database))
    finally:
        lock.release()


def _put_in_place(backup: Path, database: Path, now: datetime) -> Path | None:
    """Move the current file (and its WAL) aside, then the backup's database into place."""
    replaced = None
    if database.exists():
        replaced = database.with_name(f"{database.name}.replaced-{now:{_STAMP}}")
        os.replace(database, replaced)
        for suffix in ("-wal", "-shm"):  # they belong to the file moved aside
            side = database.with_name(database.name + suffix)
            if side.exists():
                os.replace(side, replaced.with_name(replaced.name + suffix))
    partial = database.with_name(f".{database.name}.restoring")
    problem = _unpack(backup, partial)
    if problem is not None:  # (e.g. the disk is full): put the old file back as it was
        partial.unlink(missing_ok=True)
        if replaced is not None:
            os.replace(replaced, database)
        raise DatabaseError(f"the restore did not finish, nothing changed: {problem}")
    os.replace(partial, database)
    return replaced


@dataclass(frozen=True)
class PgRestored:
    """Where the data that was in the database went (a renamed database or a safety dump)."""

    replaced_database: str | None
    safety_copy: Path | None
    check: BackupCheck


async def restore_postgresql(
    backup: Path, database_url: str, now: datetime, safety_dir: Path
) -> PgRestored:
    """Put the ``.pgdump`` ``backup`` in place of the PostgreSQL database (module docstring).
    DatabaseError if another session (a bot) is connected or the backup is not good; then
    nothing has changed. ``safety_dir`` takes a dump of the current data when the role may not
    move the database aside."""
    url = pgdump.postgres_url(database_url)
    if url is None:
        raise DatabaseError(f"{database_url} is not a PostgreSQL database URL")
    if not backup.name.endswith(PG_SUFFIX):
        raise DatabaseError(f"{backup.name} is not a PostgreSQL backup (pixel-<time>.pgdump)")
    await _refuse_while_connected(url)
    check = await verify_backup(backup, database_url)
    if not check.ok:
        raise DatabaseError(f"{backup.name} is not a good backup: {'; '.join(check.problems)}")
    await _refuse_while_connected(url)  # one may have come meanwhile
    replaced = await pgdump.restore_in_place(
        url, backup, f"{now:{_STAMP}}".replace("-", "_"), safety_dir
    )
    problems, counts = await pgdump.verify_database(url)
    return PgRestored(replaced.database, replaced.dump, BackupCheck(problems, counts))


async def _refuse_while_connected(url: URL) -> None:
    """DatabaseError if another session is connected. A session a stopping bot has just closed
    may linger in ``pg_stat_activity`` for a moment, so it is asked a few times first."""
    for _attempt in range(_ALONE_CHECKS):
        sessions = await pgdump.other_sessions(url)
        if not sessions:
            return
        await asyncio.sleep(_ALONE_WAIT)
    if sessions:
        raise DatabaseError(
            "a bot is running on the database (or another program is connected to it: "
            f"{', '.join(sessions[:5])}); stop it before restoring"
        )
