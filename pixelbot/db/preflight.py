"""Before the bot writes anything: the database file must be writable and sound.

SQLite opens a file it may not write (``chmod``, ``chattr +i``, a read-only mount) read-only
without a word, so a bot would start and then fail on every chat line. And a damaged file
would take new writes on top of the damage. Both are refused at start, each with one line
that says what is wrong and what to do. (PostgreSQL: nothing to check here.)
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelbot.db import integrity
from pixelbot.db.engine import Database
from pixelbot.db.faults import damaged_message
from pixelbot.errors import DatabaseDamaged, DatabaseReadOnly

__all__ = ["check_before_writing", "read_only_problem"]


async def check_before_writing(db: Database) -> None:
    """Raise ``DatabaseReadOnly`` or ``DatabaseDamaged`` unless the file can take writes."""
    path = db.sqlite_path
    if path is None:
        return
    problem = read_only_problem(path)
    if problem is not None:
        raise DatabaseReadOnly(
            f"cannot write {path}: {problem}; database.url in config.yaml picks the file",
            str(path),
        )
    damage = await integrity.damage(db)
    if damage:
        raise DatabaseDamaged(damaged_message(str(path), "; ".join(damage[:3])), str(path))


def read_only_problem(path: Path) -> str | None:
    """Why the bot could not write the file at ``path`` (or create files beside it), if so."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return None  # opening it says what is wrong with the path (db/faults.py)
    if _mounted_read_only(folder):
        return f"the disk holding {folder} is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only (or immutable: see lsattr); make it writable"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only, and SQLite writes its journal beside the file"
    return None


def _mounted_read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
