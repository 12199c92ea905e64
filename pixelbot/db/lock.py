"""Who is using a SQLite database file, as an advisory lock beside it (``pixel.db.lock``).

A running bot holds it shared; ``backup restore`` needs it exclusively, so it refuses while any
bot runs on the file. The operating system drops the lock when the process dies, however it
dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pixelbot.errors import DatabaseError

__all__ = ["DatabaseLock", "lock_path"]


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class DatabaseLock:
    def __init__(self, database: Path) -> None:
        self.path = lock_path(database)
        self._fd: int | None = None

    def hold_shared(self) -> None:
        """Mark the database as in use by this process (several bots may share it)."""
        self._take(fcntl.LOCK_SH, "")

    def hold_exclusive(self, what: str) -> None:
        """Take the database for ``what`` (e.g. a restore); DatabaseError if it is in use."""
        self._take(fcntl.LOCK_EX, what)

    def _take(self, mode: int, what: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseError(
                f"cannot {what or 'use the database'}: a bot is running on "
                f"{self.path.with_suffix('')} (stop it first)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
