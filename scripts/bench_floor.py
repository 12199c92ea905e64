"""The floor of the chat bench: what SQLite itself takes to store what the pipeline stored.

After the pipeline run, its rows are read back from its file, and the same writes are replayed
into a fresh file with the same schema and settings (migrations, WAL, synchronous=NORMAL), with
stdlib ``sqlite3`` ``executemany`` and no bot logic, in as many transactions as the pipeline
committed. Batch ``i`` inserts the ``i``-th slice of every append-only table (events, both
ledgers, identities), and upserts the wallets and cooldowns of the people in that slice: the
row updates the pipeline made in that batch. ``pipeline / floor`` then says how much of the
time goes to the bot's own Python work rather than to storing rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from pixelbot.db import migrate
from pixelbot.db.engine import Database

__all__ = ["run_floor"]

APPEND_ONLY = ("identities", "transactions", "xp_transactions", "events")
UPSERTS = ("users", "cooldowns")


def _rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    # cooldowns are known by (scope, key); their surrogate id is left to the new file
    columns = "scope, key, expires_at" if table == "cooldowns" else "*"
    cursor = conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid")
    return [d[0] for d in cursor.description], cursor.fetchall()


def _slices(rows: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size = len(rows)
    return [rows[size * i // parts : size * (i + 1) // parts] for i in range(parts)]


async def _fresh_schema(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")  # the same migrations and settings as the bot
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


async def run_floor(
    pipeline_file: Path, target: Path, batches: int, messages: int
) -> dict[str, Any]:
    """Replay the pipeline's writes into ``target``; returns its rate and timings."""
    with closing(sqlite3.connect(pipeline_file)) as source:
        tables = {name: _rows(source, name) for name in (*APPEND_ONLY, *UPSERTS)}
    await _fresh_schema(target)
    users_columns, users = tables["users"]
    by_user = {row[0]: row for row in users}
    cooldown_columns, cooldowns = tables["cooldowns"]
    cooldowns_by_scope: dict[str, list[tuple[Any, ...]]] = {}
    for row in cooldowns:
        cooldowns_by_scope.setdefault(row[cooldown_columns.index("scope")], []).append(row)
    tx_columns, transactions = tables["transactions"]
    tx_user = tx_columns.index("user_id")
    plan = []
    for i, tx_slice in enumerate(_slices(transactions, batches)):
        people = sorted({row[tx_user] for row in tx_slice})
        writes: list[tuple[str, list[tuple[Any, ...]]]] = []
        for name in APPEND_ONLY:
            columns, rows = tables[name]
            writes.append((_insert(name, columns), list(_slices(rows, batches)[i])))
        writes.append(
            (_upsert("users", users_columns, "id"), [by_user[u] for u in people if u in by_user])
        )
        scoped = [row for u in people for row in cooldowns_by_scope.get(f"user:{u}", [])]
        writes.append((_upsert("cooldowns", cooldown_columns, "scope, key"), scoped))
        plan.append(writes)
    with closing(sqlite3.connect(target, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")  # rows arrive slice by slice, parents anywhere
        started = time.perf_counter()
        for writes in plan:
            conn.execute("BEGIN IMMEDIATE")
            for sql, rows in writes:
                if rows:
                    conn.executemany(sql, rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(messages / elapsed),
        "transactions": len(plan),
    }


def _insert(table: str, columns: list[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _upsert(table: str, columns: list[str], keys: str) -> str:
    key_names = {k.strip() for k in keys.split(",")}
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key_names)
    conflict = keys
    marks = ", ".join("?" for _ in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )
