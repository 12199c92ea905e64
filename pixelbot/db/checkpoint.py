"""Background WAL checkpoints for SQLite.

In WAL mode a commit only appends to the ``-wal`` file; a checkpoint later copies those pages
into the database file. By default SQLite runs that checkpoint inside whichever commit crosses
1000 pages, so the writer stalls on file I/O while the chat waits. Pixel Bot raises that limit
far up (``engine.WAL_LIMIT_PAGES``, a cap for writers that never pause) and runs PASSIVE
checkpoints here, on a connection of their own in a worker thread: they never block the writer,
and the copying overlaps with the bot's Python work. On stop, a TRUNCATE checkpoint leaves a
compact database file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

__all__ = ["WalCheckpointer"]

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: Path, *, interval: float = 1.0, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.interval = interval
        self.busy_timeout_ms = busy_timeout_ms
        self._task: asyncio.Task[None] | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.checkpoint("TRUNCATE")
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int] | None:
        """Run one checkpoint: (busy, wal pages, pages copied), or None if it failed."""
        async with self._lock:  # one checkpoint at a time on our one connection
            try:
                return await asyncio.to_thread(self._checkpoint, mode)
            except sqlite3.Error as exc:
                log.debug("WAL checkpoint (%s) did not run: %s", mode, exc)
                return None

    def _checkpoint(self, mode: str) -> tuple[int, int, int]:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None
            )
            self._connection.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        row = self._connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return (int(row[0]), int(row[1]), int(row[2]))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.checkpoint("PASSIVE")
