"""The database engine: one async SQLAlchemy engine with the right settings per backend.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` (durable at each
checkpoint, fast commits), foreign keys and a busy timeout. Write transactions on SQLite start
with ``BEGIN IMMEDIATE`` so they take the write lock up front: a read-then-write transaction can
then never lose an update to another process. PostgreSQL needs none of this.

Within one bot, SQLite write transactions also take turns on an asyncio lock (``write_turn``)
before asking SQLite for its lock. Without it, a small write (a queue claim) that began while
the event loop was swamped could hold the file's lock for seconds between two awaits, and the
economy writer, waiting in SQLite's busy handler, gave up after ``busy_timeout`` and failed a
whole batch of chat lines (seen at 5,000 lines a second, ``scripts/bench.py --latency``). Taking
turns in the loop instead, nobody in the bot times out on the bot itself; ``busy_timeout`` is
left for other programs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import NullType

from pixelbot.db.checkpoint import WalCheckpointer
from pixelbot.db.faults import Faults, file_in_the_way
from pixelbot.db.fileguard import FileGuard
from pixelbot.db.writer_connection import (
    AsyncWriterConnection,
    ThreadedWriterConnection,
    WriterConnection,
)
from pixelbot.errors import DatabaseError, DatabaseUnreachable

__all__ = ["APPLICATION_NAME", "Database", "sqlite_file"]

T = TypeVar("T")

# What the bot's PostgreSQL connections call themselves (``pg_stat_activity``): a restore looks
# there for a bot still connected, and an operator sees who holds the connections.
APPLICATION_NAME = "pixelbot"

_WRITE_OPTION = "pixelbot_write"

# The WAL only starts over once a checkpoint has copied all of it, and a writer that never
# pauses (a busy chat) always appends faster than a background checkpoint can finish, and every
# page read searches the WAL (figures: README, "Why the settings are what they are"). Past this
# many pages (64 MiB at 4 KiB pages) the committing connection checkpoints itself,
# which the WAL can then restart after. Quiet periods still leave the copying to the background.
WAL_LIMIT_PAGES = 16_000


SQLITE_POOL_SIZE = 20  # connections kept open for reads (see Database.__init__)
READER_THREADS = 4  # threads (each with its SQLite connection) for Database.run_read


class Database:
    """Owns the async engine. ``write()`` opens a write transaction, ``read()`` a read one."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: timedelta = timedelta(seconds=5),
        wal_limit_pages: int = WAL_LIMIT_PAGES,
    ) -> None:
        self.url: URL = _with_async_driver(make_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        path = sqlite_file(self.url)
        where = str(path) if path is not None else self.url.render_as_string(hide_password=True)
        # Driver errors become typed DatabaseErrors here, for every connection (db/faults.py).
        self.faults = Faults(where, path, busy_timeout, is_sqlite=self.is_sqlite)
        self.guard = FileGuard(path) if path is not None else None
        if self.is_sqlite:
            _ensure_sqlite_directory(self.url)
        # A SQLite connection is a thread of aiosqlite's: one opened past the pool's size is a
        # new thread, a file open and the settings below, and is closed again when returned.
        # Under a busy chat (50 !points a second beside 5,000 lines) the default 5 kept the bot
        # opening and closing ~20 connections a second; idle ones cost only a sleeping thread.
        pool = {"pool_size": SQLITE_POOL_SIZE} if path is not None else {}
        connect_args: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql" and "application_name" not in self.url.query:
            connect_args["server_settings"] = {"application_name": APPLICATION_NAME}
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            json_serializer=_dump_json,
            json_deserializer=orjson.loads,
            connect_args=connect_args,
            **pool,
        )
        event.listen(self.engine.sync_engine, "handle_error", self.faults.translate)
        self._checkpointer: WalCheckpointer | None = None
        self._busy_timeout, self._wal_limit_pages = busy_timeout, wal_limit_pages
        self._sync_writer_engine: Engine | None = None
        self._sync_reader_engine: Engine | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._disposed = False
        self._where = where
        self._turn: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        if self.is_sqlite:
            _register_null_adapter()
            _install_sqlite_settings(
                self.engine.sync_engine, busy_timeout, wal_limit_pages, self.guard
            )
            if path is not None:
                self._checkpointer = WalCheckpointer(
                    path, busy_timeout_ms=int(busy_timeout.total_seconds() * 1000)
                )

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, for SQLite files (None for PostgreSQL or in-memory SQLite)."""
        return sqlite_file(self.url)

    def check_file(self) -> None:
        """Raise ``DatabaseVanished`` if the SQLite file is no longer the one we opened
        (``fileguard.py``): the writer asks before writing and before acknowledging."""
        if self.guard is not None:
            self.guard.check()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that will write: committed on success, rolled back on any error."""
        async with self.write_turn(), self.connect() as conn:
            await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """This bot's turn to write (SQLite; see the module docstring). Hold it around a whole
        write transaction, and never ask for it again inside one."""
        if not self.is_sqlite:
            yield
            return
        loop = asyncio.get_running_loop()
        if self._turn is None or self._turn[0] is not loop:
            self._turn = (loop, asyncio.Lock())  # a lock belongs to the loop it first ran on
        async with self._turn[1]:
            yield

    async def writer_connection(self) -> WriterConnection:
        """A connection of its own for the long-lived economy writer (its page cache stays
        warm). On a SQLite file, a synchronous one in a thread of its own (see
        ``writer_connection.py``)."""
        if self.sqlite_path is None:
            conn = await self._open()
            await conn.execution_options(**{_WRITE_OPTION: True})
            return AsyncWriterConnection(conn)
        try:
            return await ThreadedWriterConnection.open(
                self._writer_engine(), **{_WRITE_OPTION: True}
            )
        except DatabaseError:
            raise
        except Exception as error:
            self.faults.raise_for(error)
            raise

    def statement_engines(self) -> list[Engine]:
        """Every engine this database's statements run through (to hook SQLAlchemy events,
        e.g. a test recording the SQL): the async engine's, and the writer's own."""
        engines = [self.engine.sync_engine]
        if self.sqlite_path is not None:
            engines += [self._writer_engine(), self._reader_engine()]
        return engines

    def _reader_engine(self) -> Engine:
        """The engine of ``run_read``'s threads: a connection per reader thread, kept open."""
        if self._sync_reader_engine is None:
            self._sync_reader_engine = self._sync_sqlite_engine(
                pool_size=READER_THREADS,
                # (each connection is used by one thread at a time; the pool hands them round)
                connect_args={"check_same_thread": False},
            )
        return self._sync_reader_engine

    def _writer_engine(self) -> Engine:
        """The engine of the writer's synchronous SQLite connection; no pool (a failed
        connection is closed for good, and the next is opened fresh)."""
        if self._sync_writer_engine is None:
            self._sync_writer_engine = self._sync_sqlite_engine(poolclass=NullPool)
        return self._sync_writer_engine

    def _sync_sqlite_engine(self, **pool: Any) -> Engine:
        """A synchronous engine on the same file, with the same settings, hooks and fault
        translation as the async one."""
        engine = create_engine(
            self.url.set(drivername="sqlite+pysqlite"),
            json_serializer=_dump_json,
            json_deserializer=orjson.loads,
            **pool,
        )
        event.listen(engine, "handle_error", self.faults.translate)
        _install_sqlite_settings(engine, self._busy_timeout, self._wal_limit_pages, self.guard)
        return engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            yield conn

    async def run_read(self, query: Callable[..., T], *args: Any) -> T:
        """``query(connection, *args)``, a synchronous function, in a read transaction of its
        own. On a SQLite file it runs whole in a reader thread: one trip from the event loop
        instead of eight through aiosqlite (a connection, BEGIN, the statement, a fetch, the
        cursors' closes, the rollback), each of which waited its turn in a busy loop. A
        reply such as ``!points`` is asked dozens of times a second beside a busy chat."""
        if self.sqlite_path is None:
            async with self.read() as conn:
                return await conn.run_sync(query, *args)
        if self._disposed:
            raise DatabaseUnreachable("the database was closed (the bot is stopping)", self._where)
        self._reader_engine()  # (built here, on the loop, never by two reader threads at once)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="pixelbot-read")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._readers, functools.partial(self._read_now, query, *args)
        )

    def _read_now(self, query: Callable[..., T], *args: Any) -> T:
        with self._reader_engine().connect() as conn, conn.begin():
            return query(conn, *args)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection, closed at the end; a server that refuses it is a typed error."""
        conn = await self._open()
        try:
            yield conn
        finally:
            await conn.close()

    async def _open(self) -> AsyncConnection:
        try:
            return await self.engine.connect()
        except DatabaseError:
            raise
        except Exception as error:
            # A refused or reset socket at connect is a plain OSError that SQLAlchemy's
            # handle_error hook never sees (db/faults.py).
            self.faults.raise_for(error)
            raise

    def upsert(self, table: Table, keys: Sequence[str], update: Sequence[str]) -> Insert:
        """``INSERT .. ON CONFLICT (keys) DO UPDATE SET update = excluded.update``."""
        stmt: Any
        if self.is_sqlite:
            stmt = sqlite.insert(table)
        elif self.url.get_backend_name() == "postgresql":
            stmt = postgresql.insert(table)
        else:
            raise DatabaseError(f"unsupported database backend {self.url.get_backend_name()!r}")
        result: Insert = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={col: stmt.excluded[col] for col in update}
        )
        return result

    def member_of(self, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
        """``column IN (values)`` that stays cheap for thousands of values.

        SQLAlchemy renders one placeholder per value, and naming thousands of placeholders costs
        more than the query; on SQLite the values travel as one JSON array instead. On
        PostgreSQL they travel as one array (``= ANY``): asyncpg refuses a statement with more
        than 32,767 parameters, which a watch-time tick of 50,000 viewers on one platform was.
        """
        items = list(values)
        if not self.is_sqlite:
            element: Any = column.type
            if isinstance(element, NullType):  # an expression SQLAlchemy has no type for
                element = BigInteger() if items and isinstance(items[0], int) else String()
            return column == any_(bindparam(None, items, type_=postgresql.ARRAY(element)))
        array = func.json_each(bindparam(None, json.dumps(items), type_=String()))
        return column.in_(select(literal_column("value")).select_from(array))

    def data_version(self, conn: Connection) -> int | None:
        """A number that changes whenever ANOTHER connection commits to the database (SQLite's
        ``PRAGMA data_version``; this connection's own commits leave it alone). None where
        there is no such signal: PostgreSQL, and in-memory SQLite, where every caller shares
        one connection, so nobody else's writes could show."""
        if self.sqlite_path is None:
            return None
        return int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())

    @property
    def shared(self) -> bool:
        """Whether several bot processes may use this database at once. A PostgreSQL server
        may be shared (one bot per platform, a dashboard); a SQLite file belongs to one bot,
        so whatever it finds running at start was left by that bot's last run."""
        return not self.is_sqlite

    def lock_names(self, conn: Connection, names: Iterable[str]) -> None:
        """Hold a lock on each name until the transaction ends, for rows that may not exist
        yet (a global cooldown, a redeem's per-stream count), where row locks cannot help.

        PostgreSQL: transaction-level advisory locks, taken in sorted order so two processes
        cannot deadlock on them. SQLite: nothing to do, the write transaction holds the whole
        database."""
        ordered = sorted(set(names))
        if self.is_sqlite or not ordered:
            return
        conn.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(n, 0))) FROM "
                "(SELECT n FROM unnest(CAST(:names AS text[])) AS n ORDER BY n) AS ordered"
            ),
            {"names": ordered},
        )

    async def next_ids(
        self, conn: AsyncConnection, table: Table, count: int, *, dense: bool = False
    ) -> list[int]:
        """``reserve_ids`` on an async connection."""
        if count <= 0:
            return []
        return await conn.run_sync(self.reserve_ids, table, count, dense=dense)

    def reserve_ids(
        self, conn: Connection, table: Table, count: int, *, dense: bool = False
    ) -> list[int]:
        """Reserve ``count`` primary keys of ``table`` inside a write transaction.

        Lets a batch insert parents and children with one executemany each, instead of one
        INSERT .. RETURNING per row. On SQLite the write transaction holds the database lock
        (BEGIN IMMEDIATE), so max(id) cannot move under us; PostgreSQL draws from the sequence,
        where an id reserved by a batch that rolls back (or by a redeem that is refused) is
        never used. ``dense``: numbers people see (queue items, "queued as #3") follow on
        without gaps there too: max(id) under a lock held until commit, as on SQLite.
        """
        if count <= 0:
            return []
        if self.is_sqlite or dense:
            self.lock_names(conn, [f"ids:{table.name}"])
            top = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
            return list(range(int(top) + 1, int(top) + 1 + count))
        # The sequence is named once, in a subquery run once: named in each nextval it cost
        # ~9 us an id, 0.4-0.5 s for the 50,000 new wallets of a watch-time tick.
        sequence = select(
            cast(func.pg_get_serial_sequence(table.name, "id"), postgresql.REGCLASS)
        ).scalar_subquery()
        result = conn.execute(
            select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        )
        return [int(value) for value in result.scalars()]

    async def reset_sequences(self, conn: AsyncConnection, tables: Iterable[Table]) -> None:
        """After rows were inserted with their ids given (``db copy``), move each table's id
        sequence past them. SQLite needs nothing: it numbers from the highest rowid."""
        if self.is_sqlite:
            return
        quote = conn.dialect.identifier_preparer.quote
        for table in tables:
            await conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                    f"coalesce((SELECT max(id) FROM {quote(table.name)}), 0) + 1, false)"
                ),
                {"table": table.name},
            )

    async def start_background_checkpoints(self) -> None:
        """SQLite files: copy the WAL into the database in the background (see checkpoint.py)."""
        if self._checkpointer is not None:
            await self._checkpointer.start()

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        await self.engine.dispose()
        if self._sync_writer_engine is not None:
            self._sync_writer_engine.dispose()
        self._disposed = True
        if self._readers is not None:
            readers, self._readers = self._readers, None
            # (a read still running finishes; queued ones are cancelled)
            await asyncio.to_thread(readers.shutdown, cancel_futures=True)
        if self._sync_reader_engine is not None:
            self._sync_reader_engine.dispose()


def _with_async_driver(url: URL) -> URL:
    """``postgresql://...`` (what a hosting provider hands out) means asyncpg here: the bot is
    async and ships no other PostgreSQL driver. Likewise plain ``sqlite://`` means aiosqlite."""
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    if url.drivername == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url


def _dump_json(value: Any) -> str:
    """JSON columns via orjson: several times faster than the stdlib on the event log."""
    return orjson.dumps(value).decode()


def sqlite_file(url: str | URL) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _ensure_sqlite_directory(url: URL) -> None:
    """Create the database's folder (``data/`` on a first run), or say why it can't be."""
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        path = Path(url.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. "data is a file", "Read-only file system: '/mnt/data'"
            problem = file_in_the_way(path) or f"{exc.strerror or exc}: {exc.filename}"
            raise DatabaseUnreachable(
                f"cannot create the folder for {path}: {problem}; "
                "database.url in config.yaml picks the file",
                str(path),
            ) from None


def _bind_null(_value: None) -> None:
    return None


def _register_null_adapter() -> None:
    """Bind ``None`` as NULL without the sqlite3 module's slow path.

    The driver binds int, float and str directly, but any other value, None included, goes
    through its adapter lookup, which ends in two failed attribute lookups that each build an
    AttributeError message. Every event and ledger row carries a few NULLs (no cause, no actor,
    no stream), so in scripts/bench.py that lookup was 13% of the SQLite thread's instructions.
    A registered adapter is found first and returns None, which the driver binds as NULL, as
    before. (Process-wide, like every sqlite3 adapter; it changes no stored value.)"""
    sqlite3.register_adapter(type(None), _bind_null)


def _install_sqlite_settings(
    engine: Engine, busy_timeout: timedelta, wal_limit_pages: int, guard: FileGuard | None
) -> None:
    timeout_ms = int(busy_timeout.total_seconds() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A new, empty file (no page yet) gets auto_vacuum=INCREMENTAL before its first table,
        # so cleanup can give freed pages back to the disk (db/cleanup.py). Only then: on a
        # file that already has it, setting it again writes the header, and nothing may be
        # written at connect (into a damaged file least of all).
        cursor.execute("PRAGMA page_count")
        if cursor.fetchone()[0] == 0:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: index inserts stay in memory
        # Reads through a memory map skip a copy per page: the writer's set-based loads got ~20%
        # faster in scripts/bench.py. (Reads only; SQLite still writes through the WAL.)
        cursor.execute("PRAGMA mmap_size=268435456")
        # Checkpoints run in the background (db/checkpoint.py), not inside the writer's commits,
        # except past the limit: see WAL_LIMIT_PAGES.
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(wal_limit_pages)}")
        cursor.close()
        if guard is not None:
            guard.pin()  # the file exists now: remember which one it is

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
