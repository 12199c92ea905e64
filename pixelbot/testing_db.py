"""Which database a test's "database file" stands for: the SQLite file itself, or a fresh
PostgreSQL database on a throwaway server.

Tests name their database by a path (``tmp_path / "pixel.db"``), and ``testing.make_config``
turns that path into a URL here. The suite runs every database test once per backend (one
parametrized fixture in ``tests/conftest.py``) by switching the current backend; each distinct
path gets its own PostgreSQL database, and the same path the same one, so a test that reopens
its "file" to simulate a restart finds its data again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pixelbot.db.throwaway import PostgresServer

__all__ = [
    "SQLITE",
    "Backend",
    "PostgresBackend",
    "SqliteBackend",
    "current_backend",
    "database_url",
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
