"""Executemany without per-row ORM overhead, for the hot write path of the economy.

SQLAlchemy's ``conn.execute(stmt, rows)`` builds and type-processes a parameter dict per row,
which costs more than SQLite spends storing the row. Here the statement is compiled once per
shape, each row becomes a plain tuple, and a value repeated across rows (the batch timestamp) is
converted once. Type conversions still go through each column type's own bind processor, so
what lands in the database is exactly what the normal path would write.

SQLite only; other backends take the normal executemany path (asyncpg's is already fast).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

from pixelbot.db.engine import Database

__all__ = ["execute_many", "execute_tuples", "write_rows", "write_tuples"]

Processor = Callable[[Any], Any]
Processors = Sequence[tuple[str, Processor | None]]


class _Plan:
    __slots__ = ("processors", "sql")

    def __init__(self, sql: str, processors: Processors) -> None:
        self.sql = sql
        self.processors = processors

    def rows(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        columns: list[list[Any]] = []
        for name, process in self.processors:
            values = [row[name] for row in rows]
            if process is not None:
                values = _convert(values, process)
            columns.append(values)
        return list(zip(*columns, strict=True))


def _convert(values: list[Any], process: Processor) -> list[Any]:
    first = values[0]
    if len(set(map(id, values))) == 1:  # the same object throughout (a batch's timestamp)
        return [None if first is None else process(first)] * len(values)
    out: list[Any] = []
    last_in: Any = object()
    last_out: Any = None
    for value in values:
        if value is not last_in:  # the same object again (a shared timestamp) converts once
            last_in, last_out = value, (None if value is None else process(value))
        out.append(last_out)
    return out


_plans: dict[tuple[int, tuple[str, ...], str], _Plan] = {}


def _plan(stmt: UpdateBase, keys: tuple[str, ...], dialect: Dialect) -> _Plan:
    cache_key = (id(stmt), keys, dialect.name)
    plan = _plans.get(cache_key)
    if plan is None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        order = compiled.positiontup or []
        processors = [
            (name, compiled.binds[name].type._cached_bind_processor(dialect)) for name in order
        ]
        plan = _plans[cache_key] = _Plan(str(compiled), processors)
    return plan


def write_rows(
    db: Database, conn: Connection, stmt: UpdateBase, rows: Sequence[dict[str, Any]]
) -> None:
    """``conn.execute(stmt, rows)``, faster on SQLite. Every row has the same keys.

    ``stmt`` must be a long-lived (module-level) statement: plans are cached by its identity.
    """
    if not rows:
        return
    if not db.is_sqlite:
        conn.execute(stmt, list(rows))
        return
    plan = _plan(stmt, tuple(rows[0]), conn.dialect)
    conn.exec_driver_sql(plan.sql, plan.rows(rows))


def write_tuples(
    db: Database,
    conn: Connection,
    stmt: UpdateBase,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """``write_rows`` for rows built as tuples in the order of ``keys`` (a hot path that
    builds 100,000 rows saves a dict per row and the dict-to-tuple pass).

    On SQLite the tuples go to the driver as they are when the statement takes the columns
    in that order and no column needs converting; otherwise the rows are transposed once,
    the columns that need it are converted (a shared timestamp once), and zipped back.
    """
    if not rows:
        return
    if not db.is_sqlite:
        conn.execute(stmt, [dict(zip(keys, row, strict=True)) for row in rows])
        return
    plan = _plan(stmt, keys, conn.dialect)
    order = [keys.index(name) for name, _ in plan.processors]
    if order == list(range(len(keys))) and all(p is None for _, p in plan.processors):
        conn.exec_driver_sql(plan.sql, list(rows))
        return
    columns = list(zip(*rows, strict=True))
    converted = [
        columns[i] if process is None else _convert(list(columns[i]), process)
        for i, (_, process) in zip(order, plan.processors, strict=True)
    ]
    conn.exec_driver_sql(plan.sql, list(zip(*converted, strict=True)))


async def execute_many(
    db: Database, conn: AsyncConnection, stmt: UpdateBase, rows: Sequence[dict[str, Any]]
) -> None:
    """``write_rows`` on an async connection."""
    if rows:
        await conn.run_sync(lambda sync: write_rows(db, sync, stmt, rows))


async def execute_tuples(
    db: Database,
    conn: AsyncConnection,
    stmt: UpdateBase,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """``write_tuples`` on an async connection."""
    if rows:
        await conn.run_sync(lambda sync: write_tuples(db, sync, stmt, keys, rows))
