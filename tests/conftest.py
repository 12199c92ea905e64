"""Shared fixtures: a real database per test (SQLite file, and PostgreSQL), a fake clock, the
real engine.

Every integration test runs twice, once per backend, through ONE parametrized fixture
(``db_backend``, autouse): on ``postgresql`` each database path a test names becomes a fresh
database on a throwaway server started once per session (``pixelbot/db/throwaway.py``). A test
that cannot apply to PostgreSQL says why with ``@pytest.mark.sqlite_only("reason")`` (and the
other way round, ``postgresql_only``); a test that never touches a database is marked
``no_database`` (or its module listed in RUN_ONCE_MODULES) and runs once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.throwaway import PostgresServer, postgres_server
from pixelbot.testing import EventFactory, make_config, open_test_engine
from pixelbot.testing_db import SQLITE, Backend, PostgresBackend, use_backend

BACKENDS = ("sqlite", "postgresql")
# Integration modules about something else (OBS, speech) that open no database, or only the
# one a console session needs, which every other module exercises on both backends: run once,
# on SQLite (a real OBS is slow enough without running it twice).
RUN_ONCE_MODULES = {"test_obs_effects.py", "test_speech.py", "test_obs_real.py"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test cannot apply to PostgreSQL, for this reason"
    )
    config.addinivalue_line(
        "markers", "postgresql_only(reason): the test cannot apply to SQLite, for this reason"
    )
    config.addinivalue_line("markers", "no_database: the test never opens a database")
    config.addinivalue_line(
        "markers", "backends_inside(why): the test uses SQLite and PostgreSQL itself; run once"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    path = Path(str(metafunc.definition.path))
    if (
        metafunc.definition.get_closest_marker("no_database") is not None
        or metafunc.definition.get_closest_marker("backends_inside") is not None
        or path.name in RUN_ONCE_MODULES
    ):
        return  # the fixture defaults to SQLite
    elif "integration" in path.parts:
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole run (started only if a test needs it)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(autouse=True)
def db_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The database backend this run of the test uses (SQLite unless parametrized)."""
    name = getattr(request, "param", "sqlite")
    if name == "sqlite":
        marker = request.node.get_closest_marker("postgresql_only")
        if marker is not None and hasattr(request, "param"):
            pytest.skip(f"PostgreSQL only: {marker.args[0] if marker.args else 'no reason given'}")
        with use_backend(SQLITE) as chosen:
            yield chosen
        return
    marker = request.node.get_closest_marker("sqlite_only")
    if marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'no reason given'}")
    pg = PostgresBackend(request.getfixturevalue("postgres"))
    with use_backend(pg) as chosen:
        yield chosen
    pg.drop_all()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pixel.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2026, 3, 1, 20, 0, 0))


@pytest.fixture
def config(db_path: Path) -> Config:
    return make_config(db_path)


@pytest.fixture
async def engine(config: Config, clock: FakeClock) -> AsyncIterator[Engine]:
    async with open_test_engine(config, clock) as running:
        yield running


@pytest.fixture
def events(clock: FakeClock) -> EventFactory:
    return EventFactory(clock)
