"""A database URL as a hosting provider hands it out works as given: the async drivers are
chosen for it (no connection is made here)."""

from __future__ import annotations

import pytest

from pixelbot.db.engine import Database


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://pixel:secret@db.example:5432/pixel", "postgresql+asyncpg"),
        ("postgresql+asyncpg://pixel@db.example/pixel", "postgresql+asyncpg"),
        ("sqlite:///:memory:", "sqlite+aiosqlite"),
    ],
)
async def test_plain_urls_get_the_async_driver(given: str, driver: str) -> None:
    db = Database(given)
    try:
        assert db.url.drivername == driver
        assert db.shared == (driver != "sqlite+aiosqlite")
    finally:
        await db.dispose()
