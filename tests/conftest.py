"""Shared fixtures: a real SQLite file per test, a fake clock, the real engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.testing import EventFactory, make_config, open_test_engine


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
