"""Stream sessions: one row per live window of a channel. Per-stream redeem limits count from
the start of the current stream (or, while offline, from the end of the last one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from pixelbot.clock import Clock
from pixelbot.db.engine import Database
from pixelbot.db.models import Base

__all__ = ["StreamSession", "StreamSessions"]

SESSIONS = Base.metadata.tables["stream_sessions"]
COLUMNS = (
    SESSIONS.c.id,
    SESSIONS.c.platform,
    SESSIONS.c.channel,
    SESSIONS.c.started_at,
    SESSIONS.c.ended_at,
)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StreamSession:
    id: int
    platform: str
    channel: str
    started_at: datetime
    ended_at: datetime | None


class StreamSessions:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def current(self) -> StreamSession | None:
        """The open live session, if the stream is live."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(*COLUMNS)
                    .where(SESSIONS.c.ended_at.is_(None))
                    .order_by(SESSIONS.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else StreamSession(*row)

    async def window(self) -> tuple[int | None, datetime]:
        """(live session id or None, the instant per-stream limits count from)."""
        live = await self.current()
        if live is not None:
            return live.id, live.started_at
        async with self._db.read() as conn:
            last_end = (
                await conn.execute(
                    select(SESSIONS.c.ended_at)
                    .where(SESSIONS.c.ended_at.is_not(None))
                    .order_by(SESSIONS.c.ended_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        return None, last_end or EPOCH

    async def go_live(self, platform: str, channel: str, title: str | None = None) -> int:
        """Open a session (closing any left open by a crash). Returns its id."""
        now = self._clock.now()
        async with self._db.write() as conn:
            await conn.execute(
                update(SESSIONS).where(SESSIONS.c.ended_at.is_(None)).values(ended_at=now)
            )
            result = await conn.execute(
                insert(SESSIONS).values(
                    platform=platform, channel=channel, title=title, started_at=now
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def go_offline(self) -> bool:
        """Close the open session. False if the stream was not live."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.ended_at.is_(None))
                .values(ended_at=self._clock.now())
            )
            return bool(result.rowcount)
