"""Reading the data out: a viewer's ledger with its running balance, and whole tables as
rows for ``bot.py export``.

Rows are read a page at a time in id order (``WHERE id > last ORDER BY id LIMIT n``), each page
its own short read: a million-row export never holds one long read open, which on SQLite
would keep the WAL from being checkpointed for as long as it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from pixelbot.db.engine import Database
from pixelbot.economy.store import EVENTS, IDENTITIES, TRANSACTIONS, USERS

__all__ = ["EXPORTS", "HistoryRow", "count_rows", "export_rows", "ledger_history"]

PAGE = 2_000


@dataclass(frozen=True)
class _Export:
    columns: tuple[str, ...]
    query: Callable[[], Select[Any]]  # selects the columns, first the id to page by
    table: Any  # whose rows are counted (for the progress bar)


def _users() -> Select[Any]:
    return select(
        IDENTITIES.c.id,
        USERS.c.id.label("user_id"),
        IDENTITIES.c.platform,
        IDENTITIES.c.platform_user_id,
        IDENTITIES.c.login,
        IDENTITIES.c.display_name,
        USERS.c.points,
        USERS.c.xp,
        USERS.c.level,
        USERS.c.created_at,
    ).join(USERS, USERS.c.id == IDENTITIES.c.user_id)


EXPORTS: dict[str, _Export] = {
    # one row per identity (a viewer on a platform), with the balances of its wallet
    "users": _Export(
        (
            "id",
            "user_id",
            "platform",
            "platform_user_id",
            "login",
            "display_name",
            "points",
            "xp",
            "level",
            "created_at",
        ),
        _users,
        IDENTITIES,
    ),
    "ledger": _Export(
        tuple(column.name for column in TRANSACTIONS.c),
        lambda: select(*TRANSACTIONS.c),
        TRANSACTIONS,
    ),
    "events": _Export(
        tuple(column.name for column in EVENTS.c),
        lambda: select(*EVENTS.c),
        EVENTS,
    ),
}


async def count_rows(db: Database, what: str) -> int:
    async with db.read() as conn:
        table = EXPORTS[what].table
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def export_rows(db: Database, what: str) -> AsyncIterator[dict[str, Any]]:
    """Every row of ``what`` (users, ledger, events), oldest first, as plain values."""
    export = EXPORTS[what]
    base = export.query()
    id_column = base.selected_columns[0]
    async for row in _pages(db, base, id_column):
        yield dict(zip(export.columns, row, strict=True))


@dataclass(frozen=True)
class HistoryRow:
    id: int
    created_at: datetime
    amount: int
    balance_after: int
    running: int  # the sum of every amount so far: always equals balance_after
    kind: str
    reason: str
    actor: str | None
    ref: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "amount": self.amount,
            "balance_after": self.balance_after,
            "running": self.running,
            "kind": self.kind,
            "reason": self.reason,
            "actor": self.actor,
            "ref": self.ref,
        }


async def ledger_history(db: Database, user_id: int) -> AsyncIterator[HistoryRow]:
    """A wallet's points ledger, row by row, with the running balance summed here."""
    query = select(
        TRANSACTIONS.c.id,
        TRANSACTIONS.c.created_at,
        TRANSACTIONS.c.amount,
        TRANSACTIONS.c.balance_after,
        TRANSACTIONS.c.kind,
        TRANSACTIONS.c.reason,
        TRANSACTIONS.c.actor,
        TRANSACTIONS.c.ref,
    ).where(TRANSACTIONS.c.user_id == user_id)
    running = 0
    async for row in _pages(db, query, TRANSACTIONS.c.id):
        running += int(row.amount)
        yield HistoryRow(
            int(row.id),
            row.created_at,
            int(row.amount),
            int(row.balance_after),
            running,
            row.kind,
            row.reason,
            row.actor,
            row.ref,
        )


async def _pages(db: Database, query: Select[Any], id_column: Any) -> AsyncIterator[Any]:
    last: int | None = None
    while True:
        page = query.order_by(id_column).limit(PAGE)
        if last is not None:
            page = page.where(id_column > last)
        async with db.read() as conn:
            rows = (await conn.execute(page)).all()
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        last = int(rows[-1][0])
