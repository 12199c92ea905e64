"""``pixelbot db copy --to URL``: move a whole database to another backend (SQLite to
PostgreSQL, or back), then prove the copy is the same.

Every table is copied in primary-key order, in batches of ``batch_size`` rows, each batch one
transaction in the target. So the target always holds, per table, a prefix of the source: an
interrupted copy resumes after the highest key the target already has, and never writes a row
twice. Tables keyed by text (a handful of rows: redeems, queue pauses) go in one transaction
each, and a table already complete is skipped. Values go through the models' column types,
so timestamps, JSON payloads and encrypted tokens arrive exactly as stored (tokens stay
ciphertext: nothing is decrypted on the way). A wallet joined into another by ``!link`` may
name a later wallet (``users.merged_into``): that column is copied empty and filled in once
every wallet is there.

The target is migrated to the source's revision first, and must be empty or a prefix of this
same source (a resumed copy); anything else is refused. Afterwards ``db verify`` runs on the
target, and the per-table counts and ledger sums are compared with the source. Stop the bot
before copying: rows it writes during the copy may be missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db import migrate
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.db.verify import VerifyReport, verify
from pixelbot.errors import CopyError

__all__ = ["CopyReport", "copy_database", "fingerprint"]

BATCH_SIZE = 1000
Progress = Callable[[str, int], None]  # (table, rows just copied)

# Sums that must survive a copy unchanged: the ledgers and the wallets that cache them.
SUMS = (
    ("transactions", "amount"),
    ("xp_transactions", "amount"),
    ("users", "points"),
    ("users", "xp"),
)


# Columns pointing at a row of their own table that may come later in key order: copied as
# NULL, then set once the whole table is there (foreign keys hold after every batch).
FORWARD_REFERENCES = {"users": ("merged_into",)}


@dataclass
class CopyReport:
    copied: dict[str, int] = field(default_factory=dict)  # rows written by this run
    source: dict[str, int] = field(default_factory=dict)  # fingerprint of the source
    target: dict[str, int] = field(default_factory=dict)  # ... and of the target afterwards
    verified: VerifyReport | None = None

    @property
    def mismatches(self) -> list[str]:
        keys = sorted(set(self.source) | set(self.target))
        return [
            f"{key}: source {self.source.get(key)}, target {self.target.get(key)}"
            for key in keys
            if self.source.get(key) != self.target.get(key)
        ]

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.verified is not None and self.verified.ok


def tables() -> list[Table]:
    """Every table, parents before children (foreign keys hold after each batch)."""
    return list(Base.metadata.sorted_tables)


async def fingerprint(db: Database) -> dict[str, int]:
    """Row count of every table and the ledger sums: what a faithful copy keeps."""
    result: dict[str, int] = {}
    async with db.read() as conn:
        for table in tables():
            count = await conn.scalar(select(func.count()).select_from(table))
            result[f"rows.{table.name}"] = int(count or 0)
        for table_name, column in SUMS:
            table = Base.metadata.tables[table_name]
            total = await conn.scalar(select(func.coalesce(func.sum(table.c[column]), 0)))
            result[f"sum.{table_name}.{column}"] = int(total or 0)
    return result


async def copy_database(
    source: Database,
    target: Database,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy ``source`` into ``target`` (resuming a copy that was interrupted), then verify."""
    revision = await migrate.current_revision(source)
    if revision is None:
        raise CopyError("the source database has no schema (nothing to copy)")
    await migrate.upgrade(target, revision)
    if await migrate.current_revision(target) != revision:
        raise CopyError(f"the target database is not at the source's revision {revision}")
    report = CopyReport()
    for table in tables():
        report.copied[table.name] = await _copy_table(
            source, target, table, batch_size, progress or _quiet
        )
    for table_name, columns in FORWARD_REFERENCES.items():
        await _copy_forward_references(source, target, Base.metadata.tables[table_name], columns)
    async with target.write() as conn:
        await target.reset_sequences(conn, [t for t in tables() if _integer_key(t)])
    report.source = await fingerprint(source)
    report.target = await fingerprint(target)
    report.verified = await verify(target)
    return report


def _quiet(_table: str, _rows: int) -> None:
    return None


def _integer_key(table: Table) -> bool:
    keys = list(table.primary_key.columns)
    return len(keys) == 1 and keys[0].type.python_type is int


async def _count(conn: AsyncConnection, table: Table, where: Any = None) -> int:
    query = select(func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    return int(await conn.scalar(query) or 0)


async def _copy_table(
    source: Database, target: Database, table: Table, batch_size: int, progress: Progress
) -> int:
    if not _integer_key(table):
        return await _copy_whole(source, target, table, progress)
    key = next(iter(table.primary_key.columns))
    async with target.read() as conn:
        done_up_to = await conn.scalar(select(func.max(key)))
        have = await _count(conn, table)
    if done_up_to is not None:
        async with source.read() as conn:
            expected = await _count(conn, table, key <= done_up_to)
        if expected != have:
            raise CopyError(
                f"the target's {table.name} is not a copy of this source "
                f"({have} rows up to id {done_up_to}, the source has {expected}): "
                "copy into an empty database"
            )
        progress(table.name, have)  # already there from an interrupted run
    copied = 0
    last = done_up_to
    while True:
        query = select(table).order_by(key).limit(batch_size)
        if last is not None:
            query = query.where(key > last)
        async with source.read() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
        if not rows:
            return copied
        for column in FORWARD_REFERENCES.get(table.name, ()):
            for row in rows:
                row[column] = None
        async with target.write() as conn:
            await conn.execute(insert(table), rows)
        copied += len(rows)
        last = rows[-1][key.name]
        progress(table.name, len(rows))


async def _copy_forward_references(
    source: Database, target: Database, table: Table, columns: tuple[str, ...]
) -> None:
    """Set the columns ``_copy_table`` left empty (idempotent: a resumed copy sets them again)."""
    key = next(iter(table.primary_key.columns))
    for column in columns:
        async with source.read() as conn:
            rows = (
                await conn.execute(select(key, table.c[column]).where(table.c[column].is_not(None)))
            ).all()
        if not rows:
            continue
        async with target.write() as conn:
            await conn.execute(
                update(table)
                .where(key == bindparam("b_key"))
                .values({column: bindparam("b_value")}),
                [{"b_key": row[0], "b_value": row[1]} for row in rows],
            )


async def _copy_whole(source: Database, target: Database, table: Table, progress: Progress) -> int:
    async with source.read() as conn:
        rows = [dict(row._mapping) for row in await conn.execute(select(table))]
    async with target.read() as conn:
        have = await _count(conn, table)
    if have == len(rows):
        progress(table.name, have)
        return 0
    if have != 0:
        raise CopyError(
            f"the target's {table.name} has {have} rows, the source {len(rows)}: "
            "copy into an empty database"
        )
    if rows:
        async with target.write() as conn:
            await conn.execute(insert(table), rows)
    progress(table.name, len(rows))
    return len(rows)


async def total_rows(db: Database) -> int:
    """How many rows a copy of ``db`` moves (for a progress bar)."""
    async with db.read() as conn:
        return sum([await _count(conn, table) for table in tables()])
