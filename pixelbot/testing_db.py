"""Which database a test's "database file" stands for: the SQLite file itself, or a fresh
PostgreSQL database on a throwaway server.

Tests name their database by a path (``tmp_path / "pixel.db"``), and ``testing.make_config``
turns that path into a URL here. The suite runs every database test once per backend (one
parametrized fixture in ``tests/conftest.py``) by switching the current backend; each distinct
path gets its own PostgreSQL database, and the same path the same one, so a test that reopens
its "file" to simulate a restart finds its data again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from pixelbot.db.engine import sqlite_file
from pixelbot.db.throwaway import PostgresServer

__all__ = [
    "SQLITE",
    "Backend",
    "PostgresBackend",
    "SqliteBackend",
    "current_backend",
    "database_url",
    "query",
    "use_backend",
]


class Backend(Protocol):
    name: str

    def url(self, path: Path) -> str: ...


class SqliteBackend:
    name = "sqlite"

    def url(self, path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"


class PostgresBackend:
    name = "postgresql"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._urls: dict[Path, str] = {}

    def url(self, path: Path) -> str:
        key = Path(path).absolute()
        if key not in self._urls:
            self._urls[key] = self.server.create_database()
        return self._urls[key]

    def drop_all(self) -> None:
        for url in self._urls.values():
            self.server.drop_database(url.rsplit("/", 1)[1])
        self._urls.clear()


SQLITE = SqliteBackend()
_current: Backend = SQLITE


def current_backend() -> Backend:
    return _current


def database_url(path: Path) -> str:
    """The URL of the database a test names by ``path``, on the current backend."""
    return _current.url(path)


@contextlib.contextmanager
def use_backend(backend: Backend) -> Iterator[Backend]:
    global _current
    previous, _current = _current, backend
    try:
        yield backend
    finally:
        _current = previous


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one SQL statement (``?`` placeholders), run synchronously and behind the bot's
    back through a connection of its own and committed: what a test uses to look at what the
    bot committed, or to change something the way an operator's tool would.

    SQLite answers through the stdlib ``sqlite3`` module, PostgreSQL through asyncpg on a
    thread of its own (so it works inside a running event loop too). Values keep each driver's
    types: timestamps are text on SQLite and datetimes on PostgreSQL."""
    path = sqlite_file(url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = list(conn.execute(sql, params))
            conn.commit()
            return rows
    if not url.startswith("postgresql"):
        raise ValueError(f"query() reads SQLite files and PostgreSQL, not {url!r}")
    counter = itertools.count(1)
    numbered = re.sub(r"\?", lambda _match: f"${next(counter)}", sql)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(numbered, *params)]
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result()
