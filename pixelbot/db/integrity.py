"""SQLite's own check of the database file: ``PRAGMA quick_check`` / ``integrity_check``.

The ledger checks of ``db verify`` read rows; they cannot notice a page that no query happens
to touch, and on a damaged file they would crash instead of reporting. SQLite's check walks
every page: ``quick_check`` (fast, linear) at every start and in ``db verify``,
``integrity_check`` (also compares every index with its table) with ``db verify --full``.
At start (``preflight.py``) a damaged file is refused before anything is written into it.
PostgreSQL checks its own pages; this is a no-op there.
"""

from __future__ import annotations

from pixelbot.db.engine import Database
from pixelbot.errors import DatabaseDamaged

__all__ = ["damage"]

MAX_PROBLEMS = 10  # SQLite stops after this many; the first few say enough


async def damage(db: Database, *, full: bool = False) -> list[str]:
    """What SQLite finds wrong with the file, or ``[]`` when it is sound."""
    if not db.is_sqlite or db.sqlite_path is None:
        return []
    pragma = "integrity_check" if full else "quick_check"
    try:
        async with db.read() as conn:
            result = await conn.exec_driver_sql(f"PRAGMA {pragma}({MAX_PROBLEMS})")
            rows = [str(row) for row in result.scalars()]
    except DatabaseDamaged as exc:  # too broken even to check (not a database, no schema)
        return [str(exc.__cause__ or exc)]
    return [] if rows == ["ok"] else rows
