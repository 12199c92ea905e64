"""OBS undos an outage left pending, kept in the database until OBS is back.

A timed effect step (``switch_scene ... back_after``, ``show_source ... for``, a timed
``toggle_filter``) changes the stream and undoes the change later. When OBS goes away in
between, the undo cannot be sent; the effect worker remembers it here, and puts it back when
OBS is reachable again (also after a restart of the bot), before the effect queue moves on.

Each undo is settled once, as ``applied`` or ``stale`` (OBS no longer shows the change: the
streamer changed it by hand), and the settlement is written to the event log
(``obs_undo``) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import insert, select, update

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base

__all__ = ["MemoryUndoJournal", "ObsUndoStore", "PendingUndo", "Undo", "UndoJournal"]

OBS_UNDOS = Base.metadata.tables["obs_undos"]
EVENTS = Base.metadata.tables["events"]
UndoOutcome = Literal["applied", "stale"]


@dataclass(frozen=True)
class Undo:
    """What puts one change back, and how to see that the change is still there.

    ``request`` is ``{"type": ..., "data": {...}}``; ``check`` is a request whose answer's
    ``field`` equals ``value`` while the change is still showing.
    """

    item_id: int | None
    what: str  # "switch back to scene 'Main'"
    request: dict[str, Any]
    check: dict[str, Any]


@dataclass(frozen=True)
class PendingUndo:
    id: int
    undo: Undo


class UndoJournal(Protocol):
    async def remember(self, undo: Undo) -> None: ...

    async def pending(self) -> list[PendingUndo]: ...

    async def settle(self, undo_id: int, outcome: UndoOutcome, detail: str) -> None: ...


class ObsUndoStore:
    """``UndoJournal`` in the database (``obs_undos``, settled ones logged in ``events``)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def remember(self, undo: Undo) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                insert(OBS_UNDOS).values(
                    item_id=undo.item_id,
                    what=undo.what[:300],
                    request=undo.request,
                    check=undo.check,
                    created_at=self._clock.now(),
                )
            )

    async def pending(self) -> list[PendingUndo]:
        query = (
            select(
                OBS_UNDOS.c.id,
                OBS_UNDOS.c.item_id,
                OBS_UNDOS.c.what,
                OBS_UNDOS.c.request,
                OBS_UNDOS.c.check,
            )
            .where(OBS_UNDOS.c.outcome.is_(None))
            .order_by(OBS_UNDOS.c.id)
        )
        async with self._db.read() as conn:
            rows = await conn.execute(query)
            return [PendingUndo(row[0], Undo(*row[1:])) for row in rows]

    async def settle(self, undo_id: int, outcome: UndoOutcome, detail: str) -> None:
        now = self._clock.now()
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(OBS_UNDOS)
                    .where(OBS_UNDOS.c.id == undo_id, OBS_UNDOS.c.outcome.is_(None))
                    .values(outcome=outcome, settled_at=now)
                    .returning(OBS_UNDOS.c.item_id, OBS_UNDOS.c.what)
                )
            ).first()
            if row is None:  # settled already
                return
            await conn.execute(
                insert(EVENTS).values(
                    kind="obs_undo",
                    payload={
                        "undo": undo_id,
                        "item": row.item_id,
                        "what": row.what,
                        "outcome": outcome,
                        "detail": detail,
                    },
                    created_at=now,
                )
            )


class MemoryUndoJournal:
    """``UndoJournal`` in memory: for tests, and a worker without a database."""

    def __init__(self) -> None:
        self.undos: dict[int, Undo] = {}
        self.settled: dict[int, tuple[UndoOutcome, str]] = {}

    async def remember(self, undo: Undo) -> None:
        self.undos[len(self.undos) + 1] = undo

    async def pending(self) -> list[PendingUndo]:
        return [PendingUndo(i, u) for i, u in self.undos.items() if i not in self.settled]

    async def settle(self, undo_id: int, outcome: UndoOutcome, detail: str) -> None:
        self.settled.setdefault(undo_id, (outcome, detail))
