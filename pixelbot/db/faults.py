"""Database faults: driver errors become the typed errors of ``pixelbot.errors``, in one place.

SQLAlchemy calls ``Faults.translate`` (its ``handle_error`` hook, installed by ``db.engine``)
for every error raised by a connect, a statement or a commit, on every connection: the
writer's, a read's, a migration's. An error that says something about the database itself
(locked, full, read-only, cannot be opened, damaged) comes out as a ``DatabaseError`` whose
message names the file and says what to do; anything else (a constraint, a bug in a query)
passes through unchanged.

While the bot runs (``watch()``, from the writer's start), each fault is also told to the
operator, once per outage rather than once per chat line: the first failure logs its cause,
later ones of the same kind stay quiet, and the next successful commit (``recovered()``) says
that saving works again. Before that, at start, the error simply ends the start and the CLI
prints it once.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from pixelbot.errors import (
    DatabaseDamaged,
    DatabaseError,
    DatabaseFull,
    DatabaseLocked,
    DatabaseReadOnly,
    DatabaseUnreachable,
)

__all__ = ["Faults", "file_in_the_way", "path_problem"]

log = logging.getLogger("pixelbot.db")

_CONFIG_HINT = "database.url in config.yaml picks the file"


class Faults:
    """Translates driver errors for one database and reports outages to the operator."""

    def __init__(self, where: str, path: Path | None, busy_timeout: timedelta) -> None:
        self.where = where  # the file, or the server's URL without its password
        self.path = path
        self.busy_timeout = busy_timeout
        self.watching = False
        self._outage: type[DatabaseError] | None = None

    # -- translation --------------------------------------------------------------------------

    def translate(self, context: Any) -> BaseException | None:
        """SQLAlchemy's ``handle_error`` hook: return the error to raise instead, or None."""
        # (PostgreSQL's faults, asyncpg's own error classes, are not translated yet.)
        error = self.error_for(context.original_exception)
        if error is None:
            return None
        error.__cause__ = context.original_exception
        self.report(error)
        return error

    def error_for(self, original: BaseException) -> DatabaseError | None:
        """The ``DatabaseError`` a SQLite error means, or None if it is not about the file."""
        name = getattr(original, "sqlite_errorname", None)
        if not isinstance(name, str):
            return None
        kind = "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE -> SQLITE_IOERR
        where = self.where
        if kind in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            seconds = f"{self.busy_timeout.total_seconds():g}s"
            return DatabaseLocked(
                f"{where} is locked by another program for longer than database.busy_timeout "
                f"({seconds}); close the other program (a second bot, a database browser) "
                "or raise busy_timeout",
                where,
            )
        if kind == "SQLITE_FULL":
            return DatabaseFull(f"cannot save to {where}: the disk is full; free some space", where)
        if kind in ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH"):
            return DatabaseReadOnly(
                f"cannot write {where}: the file, its folder or the disk is read-only; "
                f"make it writable ({_CONFIG_HINT})",
                where,
            )
        if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            return DatabaseDamaged(damaged_message(where, str(original)), where)
        if kind == "SQLITE_CANTOPEN":
            problem = path_problem(self.path) if self.path is not None else None
            return DatabaseUnreachable(
                f"cannot open {where}: {problem or original}; {_CONFIG_HINT}", where
            )
        if kind == "SQLITE_IOERR":
            return DatabaseUnreachable(
                f"cannot read or write {where}: the disk reported an I/O error ({name}); "
                "check the disk and that the file is still there",
                where,
            )
        return None

    # -- telling the operator ---------------------------------------------------------------

    def watch(self) -> None:
        """From now on, report each outage once (the bot is running)."""
        self.watching = True

    def unwatch(self) -> None:
        self.watching = False

    def report(self, error: DatabaseError) -> None:
        """Log the cause of an outage the first time it shows; stay quiet while it lasts."""
        if not self.watching or type(error) is self._outage:
            return
        self._outage = type(error)
        details = error if log.isEnabledFor(logging.DEBUG) else None  # the traceback with -v
        log.error("%s (nothing is saved until this is fixed)", error, exc_info=details)

    def recovered(self) -> None:
        """A commit went through: an outage, if there was one, is over."""
        if self._outage is not None:
            self._outage = None
            log.warning("the database at %s can save again", self.where)


def damaged_message(where: str, detail: str) -> str:
    return (
        f"{where} is damaged ({detail}); the bot will not write into it. "
        "Check it with `python bot.py db verify --full` and restore a copy from a backup"
    )


def file_in_the_way(path: Path) -> str | None:
    """A file where the path to ``path`` needs a folder (``data`` in ``data/pixel.db``)."""
    for ancestor in reversed(path.parents):
        if ancestor.exists() and not ancestor.is_dir():
            return f"{ancestor} is a file, not a folder"
    return None


def path_problem(path: Path) -> str | None:
    """Why a database file at ``path`` cannot be opened or created, in words, if we can tell."""
    blocked = file_in_the_way(path)
    if blocked is not None:
        return blocked
    for ancestor in reversed(path.parents):
        if not ancestor.exists():
            return f"the folder {ancestor} does not exist"
    if path.is_dir():
        return "it is a folder, not a file"
    folder = path.parent
    if not path.exists() and not _writable(folder):
        return f"the folder {folder} is read-only, so the file cannot be created there"
    return None


def _writable(folder: Path) -> bool:
    return os.access(folder if str(folder) else Path("."), os.W_OK)
