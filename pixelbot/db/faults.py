"""Database faults: driver errors become the typed errors of ``pixelbot.errors``, in one place.

SQLAlchemy calls ``Faults.translate`` (its ``handle_error`` hook, installed by ``db.engine``)
for every error raised by a connect, a statement or a commit, on every connection: the
writer's, a read's, a migration's. An error that says something about the database itself
(locked, full, read-only, cannot be opened, damaged) comes out as a ``DatabaseError`` whose
message names the file and says what to do; anything else (a constraint, a bug in a query)
passes through unchanged.

The same for PostgreSQL (asyncpg), by SQLSTATE class rather than by message text:

=========================================  ===========================================
server down, restarting, connection lost   ``DatabaseUnreachable`` (08xxx, 57P0x, a
(refused, reset, 57P01 admin shutdown)     refused socket, asyncpg's closed connection)
too many connections (53300), bad login    ``DatabaseUnreachable``, saying which
disk full (53100)                          ``DatabaseFull``
read-only transaction (25006: a standby)   ``DatabaseReadOnly``
serialization failure 40001, deadlock      ``DatabaseConflict``: nothing was saved; the
40P01, lock not available 55P03            writer runs the batch again
unique violation 23505                     unchanged: where it is an idempotency hit (two
                                           bots storing one event), the writer's one-by-one
                                           retry finds the row and answers "duplicate"
=========================================  ===========================================

A refused connect raises a plain ``OSError`` that SQLAlchemy does not route through
``handle_error``; ``Database`` passes those to ``Faults.raise_for`` itself.

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
    DatabaseConflict,
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
_URL_HINT = "database.url in config.yaml (or DATABASE_URL) names the server"


class Faults:
    """Translates driver errors for one database and reports outages to the operator."""

    def __init__(
        self, where: str, path: Path | None, busy_timeout: timedelta, *, is_sqlite: bool = True
    ) -> None:
        self.where = where
        self.is_sqlite = is_sqlite  # the file, or the server's URL without its password
        self.path = path
        self.busy_timeout = busy_timeout
        self.watching = False
        self._outage: type[DatabaseError] | None = None

    # -- translation --------------------------------------------------------------------------

    def translate(self, context: Any) -> BaseException | None:
        """SQLAlchemy's ``handle_error`` hook: return the error to raise instead, or None."""
        error = self.error_for(context.original_exception)
        if error is None:
            return None
        if isinstance(error, DatabaseUnreachable) and not self.is_sqlite:
            # Let SQLAlchemy drop the pool's other connections too: after a server restart
            # they are all dead, and each would otherwise fail one more caller.
            context.is_disconnect = True
        error.__cause__ = context.original_exception
        self.report(error)
        return error

    def raise_for(self, original: BaseException) -> None:
        """Raise the typed error for a driver error that bypassed ``translate`` (a refused
        connect is a plain ``OSError``); return if it says nothing about the database."""
        error = self.error_for(original)
        if error is not None:
            self.report(error)
            raise error from original

    def error_for(self, original: BaseException) -> DatabaseError | None:
        """The ``DatabaseError`` a driver error means, or None if it is not about the database
        itself (a constraint, a bug in a query)."""
        name = getattr(original, "sqlite_errorname", None)
        if not isinstance(name, str):
            return self._postgres_error_for(original)
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

    def _postgres_error_for(self, original: BaseException) -> DatabaseError | None:
        where = self.where
        cause = original.__cause__ or original
        code = getattr(original, "sqlstate", None) or getattr(cause, "sqlstate", None)
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if not isinstance(code, str):
            if _connection_lost(cause):
                return DatabaseUnreachable(
                    f"cannot reach the PostgreSQL server at {where} ({detail}): is it running? "
                    f"({_URL_HINT}); the bot reconnects by itself once it is back",
                    where,
                )
            return None
        if code in ("40001", "40P01", "55P03"):
            return DatabaseConflict(
                f"PostgreSQL at {where} gave up on a transaction for a concurrent one ({detail}); "
                "another bot process or program is writing the same rows",
                where,
            )
        if code == "53300":
            return DatabaseUnreachable(
                f"the PostgreSQL server at {where} refuses new connections: too many clients "
                "(close other programs using it, or raise its max_connections)",
                where,
            )
        if code == "53100":
            return DatabaseFull(
                f"cannot save to the PostgreSQL server at {where}: its disk is full; free space "
                "on the server",
                where,
            )
        if code == "25006":
            return DatabaseReadOnly(
                f"cannot write to the PostgreSQL server at {where}: it only allows reading "
                f"(a standby, or default_transaction_read_only is on); {_URL_HINT} must name "
                "the primary",
                where,
            )
        if code.startswith(("08", "57P")):
            return DatabaseUnreachable(
                f"lost the PostgreSQL server at {where} ({detail}); the bot reconnects by "
                "itself once it is back",
                where,
            )
        if code.startswith("28") or code == "3D000":
            return DatabaseUnreachable(
                f"the PostgreSQL server at {where} refused the login ({detail}); {_URL_HINT}",
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
        if isinstance(error, DatabaseConflict):
            return  # retried by the writer; it reports one only when it gives up
        self._outage = type(error)
        details = error if log.isEnabledFor(logging.DEBUG) else None  # the traceback with -v
        log.error("%s (nothing is saved until this is fixed)", error, exc_info=details)

    def recovered(self) -> None:
        """A commit went through: an outage, if there was one, is over."""
        if self._outage is not None:
            self._outage = None
            log.warning("the database at %s can save again", self.where)


def _connection_lost(error: BaseException) -> bool:
    """A socket that could not connect or broke, or asyncpg's word for a closed connection."""
    if isinstance(error, (OSError, TimeoutError)):  # refused, reset, unreachable, timed out
        return True
    name = type(error).__name__
    if name in ("ConnectionDoesNotExistError", "ConnectionFailureError"):
        return True
    text = str(error)
    return name.endswith("InterfaceError") and (
        "connection is closed" in text or "connection was closed" in text
    )


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
