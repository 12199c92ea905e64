"""The database file can't vanish under the bot: notice when the path no longer leads to it.

SQLite keeps writing to a file it has open even after the file, or its whole folder, is
deleted or replaced: every commit "succeeds" into an inode nobody can reach, and everything
acknowledged after that is lost when the bot stops. So the bot pins the device and inode of the
file and of its folder when it first connects, and the writer checks them before it writes and
again after each commit, before it tells anyone their change was saved. Once they differ the
guard stays tripped: the bot refuses every write (and says why) until it is restarted on a real
file. Two ``stat`` calls per batch; nothing for PostgreSQL or in-memory SQLite.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pixelbot.errors import DatabaseVanished

__all__ = ["FileGuard"]

log = logging.getLogger("pixelbot.db")

_Identity = tuple[int, int]  # (st_dev, st_ino)


class FileGuard:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pinned: tuple[_Identity, _Identity] | None = None
        self._tripped: DatabaseVanished | None = None

    @property
    def pinned(self) -> bool:
        return self._pinned is not None

    def pin(self) -> None:
        """Remember which file and folder the database is (once, at the first connection)."""
        if self._pinned is None:
            current = self._identities()
            if current is not None:
                self._pinned = current

    def check(self) -> None:
        """Raise ``DatabaseVanished`` if the path no longer leads to the pinned file."""
        if self._tripped is not None:
            raise self._tripped
        if self._pinned is None:
            return
        file, folder = _identity(self.path), _identity(self._folder)
        if (file, folder) == self._pinned:
            return
        if folder != self._pinned[1]:
            what = f"the folder {self._folder} was removed or replaced"
        else:
            what = f"{self.path} was deleted or replaced"
        self._tripped = DatabaseVanished(
            f"{what} while the bot was running. Every write is refused from now on (nothing "
            "written there could ever be read back); restore the file and restart the bot",
            str(self.path),
        )
        log.critical("%s", self._tripped)
        raise self._tripped

    @property
    def _folder(self) -> Path:
        return self.path.parent

    def _identities(self) -> tuple[_Identity, _Identity] | None:
        file, folder = _identity(self.path), _identity(self._folder)
        if file is None or folder is None:
            return None
        return file, folder


def _identity(path: Path) -> _Identity | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino
