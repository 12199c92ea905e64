"""Read-only questions about wallets: who is this name, what do they have, who leads.

Reads go straight to the database (WAL lets them run beside the writer); every write the caller
awaited is already committed, so they see it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from pixelbot.db.engine import Database
from pixelbot.economy.store import IDENTITIES, USERS
from pixelbot.errors import AmbiguousViewer, UnknownViewer
from pixelbot.events import Viewer

__all__ = ["WalletSummary", "Wallets"]


@dataclass(frozen=True)
class WalletSummary:
    user_id: int
    display_name: str
    points: int
    xp: int
    level: int

    def as_dict(self) -> dict[str, object]:
        return {
            "user": self.display_name,
            "points": self.points,
            "xp": self.xp,
            "level": self.level,
        }


class Wallets:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, name: str, platform: str | None = None) -> int:
        """The user id behind a login or display name (``@`` optional, any case).

        Raises UnknownViewer. Names are only a way to find someone: the wallet is keyed by the
        platform's user id, and a current login wins over an old display name."""
        wanted = name.removeprefix("@").strip().lower()
        async with self._db.read() as conn:
            for column in (IDENTITIES.c.login, IDENTITIES.c.display_name):
                query = (
                    select(IDENTITIES.c.user_id)
                    .where(func.lower(column) == wanted)
                    .distinct()
                    .limit(2)
                )
                if platform is not None:
                    query = query.where(IDENTITIES.c.platform == platform)
                found = list((await conn.execute(query)).scalars())
                if len(found) > 1:
                    # Display names are free text (anyone can call themselves "Alice"): never
                    # guess whose wallet a payment goes to.
                    raise AmbiguousViewer(name)
                if found:
                    return int(found[0])
        raise UnknownViewer(name, platform)

    async def find_identity(self, viewer: Viewer) -> int:
        """The user id of a viewer as seen on a platform (UnknownViewer if never seen)."""
        async with self._db.read() as conn:
            found = (
                await conn.execute(
                    select(IDENTITIES.c.user_id).where(
                        IDENTITIES.c.platform == viewer.platform,
                        IDENTITIES.c.platform_user_id == viewer.platform_user_id,
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            raise UnknownViewer(viewer.display_name, viewer.platform)
        return int(found)

    async def summary_of(self, viewer: Viewer) -> WalletSummary:
        """``summary(find_identity(viewer))`` in one read (``!points``, asked 50 times a
        second in a busy chat)."""
        found = await self._db.run_read(_summary_of, viewer)
        if found is None:
            raise UnknownViewer(viewer.display_name, viewer.platform)
        return found

    async def summary(self, user_id: int) -> WalletSummary:
        found = await self._db.run_read(_summary, user_id)
        if found is None:
            raise UnknownViewer(f"#{user_id}")
        return found

    async def xp_rank(self, user_id: int) -> tuple[int, int]:
        """(rank by XP, number of wallets); rank 1 has the most XP."""
        mine = select(USERS.c.xp).where(USERS.c.id == user_id).scalar_subquery()
        # One pass over the wallets counts both (no index serves either: ``xp`` has none, and
        # the one on ``merged_into`` holds only the joined wallets, migration 0009). Wallets
        # joined into another by !link are no longer anyone's.
        counts = select(
            func.count(case((USERS.c.xp > mine, 1))),
            func.count(case((USERS.c.merged_into.is_(None), 1))),
        )
        async with self._db.read() as conn:
            ahead, total = (await conn.execute(counts)).one()
        return int(ahead) + 1, int(total)

    async def top(self, limit: int = 10) -> list[WalletSummary]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(USERS.c.id, USERS.c.display_name, USERS.c.points, USERS.c.xp, USERS.c.level)
                .where(USERS.c.merged_into.is_(None))
                .order_by(USERS.c.points.desc(), USERS.c.id)
                .limit(limit)
            )
            return [WalletSummary(*row) for row in rows]


_SUMMARY = (USERS.c.id, USERS.c.display_name, USERS.c.points, USERS.c.xp, USERS.c.level)


def _summary_of(conn: Connection, viewer: Viewer) -> WalletSummary | None:
    row = conn.execute(
        select(*_SUMMARY)
        .join(IDENTITIES, IDENTITIES.c.user_id == USERS.c.id)
        .where(
            IDENTITIES.c.platform == viewer.platform,
            IDENTITIES.c.platform_user_id == viewer.platform_user_id,
        )
    ).first()
    return None if row is None else WalletSummary(*row)


def _summary(conn: Connection, user_id: int) -> WalletSummary | None:
    row = conn.execute(select(*_SUMMARY).where(USERS.c.id == user_id)).first()
    return None if row is None else WalletSummary(*row)
