"""The economy writer's own connection: each step of a batch reaches the database in one trip.

A batch reads what its operations need (``store.load``), applies them in Python, then writes
their rows (``store.flush``): a dozen statements or more. Through aiosqlite every statement is
several round trips between the event loop and SQLite's thread (a queue put, a wake-up of the
loop through its self-pipe, a future), about 50 per batch: 4.6 ms of the event loop's CPU for a
batch of one message, which a steady chat paid dozens of times a second and every reply waited
behind (``scripts/bench.py --latency``). On a SQLite file the writer therefore keeps a plain
synchronous connection in a thread of its own and hands it each step whole: two trips per
batch, one to begin and load, one to flush and commit.

The store's functions are synchronous and take a ``Connection``; elsewhere (PostgreSQL, whose
driver runs in the loop anyway, and in-memory SQLite, whose one database lives in aiosqlite's
connection) they run through ``AsyncConnection.run_sync`` on an async connection instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

__all__ = ["AsyncWriterConnection", "ThreadedWriterConnection", "WriterConnection", "WriterStep"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriterStep(Protocol):
    """One write transaction, run as steps: each is a synchronous function of the connection."""

    async def run(self, step: Callable[..., T], *args: Any) -> T:
        """``step(connection, *args)`` inside the transaction (the first step begins it)."""
        ...

    async def commit_after(self, step: Callable[..., T], *args: Any) -> T:
        """``run``, then commit, in the same trip."""
        ...


class WriterConnection(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[WriterStep]:
        """A transaction: rolled back if the block ends without ``commit_after``, or raises."""
        ...

    async def close(self) -> None: ...


class AsyncWriterConnection:
    """PostgreSQL and in-memory SQLite: the steps run on an async connection (``run_sync``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriterStep]:
        transaction = await self._conn.begin()
        step = _AsyncStep(self._conn, transaction)
        try:
            yield step
        finally:
            if not step.committed:  # (``begin()``'s own block would commit here)
                try:  # (also detaches a transaction whose COMMIT failed)
                    await transaction.rollback()
                except Exception:  # the writer drops a failed connection anyway
                    log.debug("rolling back a failed batch failed too", exc_info=True)

    async def close(self) -> None:
        await self._conn.close()


class _AsyncStep:
    def __init__(self, conn: AsyncConnection, transaction: AsyncTransaction) -> None:
        self._conn, self._transaction = conn, transaction
        self.committed = False

    async def run(self, step: Callable[..., T], *args: Any) -> T:
        return await self._conn.run_sync(step, *args)

    async def commit_after(self, step: Callable[..., T], *args: Any) -> T:
        result = await self._conn.run_sync(step, *args)
        await self._transaction.commit()
        self.committed = True
        return result


class ThreadedWriterConnection:
    """A SQLite file: a synchronous connection used only from one thread of its own.

    ``connect`` opens it in that thread (SQLite connections belong to the thread that opened
    them); ``engine`` carries the same settings, hooks and fault translation as the bot's
    async engine (``Database``)."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixelbot-writer")
        self._conn: Connection | None = None

    @classmethod
    async def open(cls, engine: Engine, **options: Any) -> ThreadedWriterConnection:
        def connect() -> Connection:
            return engine.connect().execution_options(**options)

        opened = cls(connect)
        try:
            await opened.call(opened._open)
        except BaseException:
            # (cancelled, the open may still finish in the thread: close it there after)
            opened._thread.submit(opened._close)
            opened._thread.shutdown(wait=False)
            raise
        return opened

    def _open(self) -> None:
        self._conn = self._connect()

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the connection's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(function, *args))

    @property
    def connection(self) -> Connection:
        """The connection (only for functions that ``call`` runs in its thread)."""
        if self._conn is None:
            raise RuntimeError("the writer's connection is closed")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriterStep]:
        step = _ThreadStep(self)
        try:
            yield step
        finally:
            if step.open:  # the block ended early, or raised: nothing of it stays
                await self.call(step.rollback)

    async def close(self) -> None:
        try:
            await self.call(self._close)
        except BaseException:
            self._thread.shutdown(wait=False)
            raise
        self._thread.shutdown(wait=True)  # (idle now: its thread ends at once)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _ThreadStep:
    def __init__(self, owner: ThreadedWriterConnection) -> None:
        self._owner = owner
        self._transaction: RootTransaction | None = None

    @property
    def open(self) -> bool:
        return self._transaction is not None

    async def run(self, step: Callable[..., T], *args: Any) -> T:
        return await self._owner.call(self._step, step, args, False)

    async def commit_after(self, step: Callable[..., T], *args: Any) -> T:
        return await self._owner.call(self._step, step, args, True)

    def _step(self, step: Callable[..., T], args: tuple[Any, ...], commit: bool) -> T:
        conn = self._owner.connection
        if self._transaction is None:
            self._transaction = conn.begin()
        try:
            result = step(conn, *args)
            if commit:
                self._transaction.commit()
                self._transaction = None
        except BaseException:
            self.rollback()
            raise
        return result

    def rollback(self) -> None:
        """Undo the transaction, also one whose COMMIT failed (SQLAlchemy keeps that one
        attached, inactive, and the driver may still hold SQLite's write lock for it)."""
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return
        try:
            transaction.rollback()
        except Exception:  # the connection is dropped after a failed batch anyway
            log.debug("rolling back a failed batch failed too", exc_info=True)
        conn = self._owner.connection
        try:
            if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        except Exception:
            log.debug("rolling back the driver's transaction failed too", exc_info=True)
