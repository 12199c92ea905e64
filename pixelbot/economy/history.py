"""Read-only views for the operator: find viewers by part of a name, page through a wallet's
ledger, and the latest events.

Like ``queries.py`` these read straight from the database; nothing here writes. Pages are
keyset pages (``before`` an id, newest first), so a page stays right while new rows arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select

from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.store import EVENTS, IDENTITIES, TRANSACTIONS, USERS

__all__ = [
    "EventEntry",
    "History",
    "IdentityEntry",
    "LedgerEntryRow",
    "LedgerPage",
    "ViewerEntry",
]

QUEUE_ITEMS: Table = Base.metadata.tables["queue_items"]

# Event kinds too frequent to be news: every chat line, every award and presence ping.
QUIET_KINDS = ("chat", "award", "presence")


@dataclass(frozen=True)
class IdentityEntry:
    platform: str
    login: str
    display_name: str


@dataclass(frozen=True)
class ViewerEntry:
    user_id: int
    display_name: str
    points: int
    xp: int
    level: int
    identities: tuple[IdentityEntry, ...]


@dataclass(frozen=True)
class LedgerEntryRow:
    id: int
    amount: int
    balance_after: int
    kind: str
    reason: str
    actor: str | None
    created_at: datetime


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntryRow]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: no more


@dataclass(frozen=True)
class EventEntry:
    id: int
    kind: str
    platform: str | None
    viewer_name: str | None
    payload: dict[str, Any]
    created_at: datetime


def _like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (escape char ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class History:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(self, text: str, limit: int = 20) -> list[ViewerEntry]:
        """Wallets whose wallet name, or any identity's login or display name, contains
        ``text`` (any case), the richest first."""
        wanted = text.removeprefix("@").strip().lower()
        if not wanted:
            return []
        pattern = _like_pattern(wanted)
        matching = (
            select(IDENTITIES.c.user_id)
            .where(
                or_(
                    func.lower(IDENTITIES.c.login).like(pattern, escape="\\"),
                    func.lower(IDENTITIES.c.display_name).like(pattern, escape="\\"),
                )
            )
            .union(
                select(USERS.c.id).where(
                    func.lower(USERS.c.display_name).like(pattern, escape="\\")
                )
            )
        )
        async with self._db.read() as conn:
            wallets = list(
                await conn.execute(
                    select(
                        USERS.c.id, USERS.c.display_name, USERS.c.points, USERS.c.xp, USERS.c.level
                    )
                    .where(USERS.c.id.in_(matching), USERS.c.merged_into.is_(None))
                    .order_by(USERS.c.points.desc(), USERS.c.id)  # (joined wallets: left out)
                    .limit(limit)
                )
            )
            found: dict[int, list[IdentityEntry]] = {row.id: [] for row in wallets}
            if found:
                rows = await conn.execute(
                    select(
                        IDENTITIES.c.user_id,
                        IDENTITIES.c.platform,
                        IDENTITIES.c.login,
                        IDENTITIES.c.display_name,
                    )
                    .where(IDENTITIES.c.user_id.in_(list(found)))
                    .order_by(IDENTITIES.c.id)
                )
                for row in rows:
                    found[row.user_id].append(
                        IdentityEntry(row.platform, row.login, row.display_name)
                    )
        return [
            ViewerEntry(
                row.id, row.display_name, row.points, row.xp, row.level, tuple(found[row.id])
            )
            for row in wallets
        ]

    async def viewer(self, user_id: int) -> ViewerEntry | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        USERS.c.id, USERS.c.display_name, USERS.c.points, USERS.c.xp, USERS.c.level
                    ).where(USERS.c.id == user_id)
                )
            ).first()
            if row is None:
                return None
            identities = await conn.execute(
                select(IDENTITIES.c.platform, IDENTITIES.c.login, IDENTITIES.c.display_name)
                .where(IDENTITIES.c.user_id == user_id)
                .order_by(IDENTITIES.c.id)
            )
            return ViewerEntry(
                row.id,
                row.display_name,
                row.points,
                row.xp,
                row.level,
                tuple(IdentityEntry(*identity) for identity in identities),
            )

    async def ledger(
        self, user_id: int, *, before: int | None = None, size: int = 20
    ) -> LedgerPage:
        """One page of a wallet's points ledger, newest first."""
        query = select(
            TRANSACTIONS.c.id,
            TRANSACTIONS.c.amount,
            TRANSACTIONS.c.balance_after,
            TRANSACTIONS.c.kind,
            TRANSACTIONS.c.reason,
            TRANSACTIONS.c.actor,
            TRANSACTIONS.c.created_at,
        ).where(TRANSACTIONS.c.user_id == user_id)
        if before is not None:
            query = query.where(TRANSACTIONS.c.id < before)
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(query.order_by(TRANSACTIONS.c.id.desc()).limit(size + 1))
            )
        entries = [LedgerEntryRow(*row) for row in rows[:size]]
        more = len(rows) > size
        return LedgerPage(entries, entries[-1].id if more and entries else None)

    async def events(
        self, *, limit: int = 50, quiet: bool = False, user_id: int | None = None
    ) -> list[EventEntry]:
        """The latest events, newest first; ``quiet``: chat lines, awards and presence too."""
        query = select(
            EVENTS.c.id,
            EVENTS.c.kind,
            EVENTS.c.platform,
            USERS.c.display_name,
            EVENTS.c.payload,
            EVENTS.c.created_at,
        ).select_from(EVENTS.outerjoin(USERS, USERS.c.id == EVENTS.c.user_id))
        if not quiet:
            query = query.where(EVENTS.c.kind.not_in(QUIET_KINDS))
        if user_id is not None:
            query = query.where(EVENTS.c.user_id == user_id)
        async with self._db.read() as conn:
            rows = await conn.execute(query.order_by(EVENTS.c.id.desc()).limit(limit))
            return [
                EventEntry(row.id, row.kind, row.platform, row[3], dict(row.payload or {}), row[5])
                for row in rows
            ]
