"""NULLs reach SQLite through a registered adapter, and are stored as real NULLs.

The sqlite3 driver sends every value that is not an int, float or str through an adapter lookup
that, when nothing is registered, fails two attribute lookups, each building an AttributeError
message: 13% of the writer thread's instructions in scripts/bench.py. ``pixelbot.db.engine``
registers an adapter for None so the lookup ends at once. These tests pin both halves: the
adapter is in place once a database is open, and what it binds is NULL, not a text or a zero.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from pixelbot.app import Engine
from pixelbot.testing import EventFactory, viewer

pytestmark = pytest.mark.sqlite_only("about the sqlite3 module's NULL adapter")


def test_an_open_database_has_none_bound_without_the_lookup(engine: Engine) -> None:
    adapter = sqlite3.adapters.get((type(None), sqlite3.PrepareProtocol))
    assert adapter is not None
    assert adapter(None) is None


async def test_the_null_columns_of_events_and_ledger_rows_are_stored_as_null(
    engine: Engine, events: EventFactory
) -> None:
    earned = await engine.earning.handle(events.chat(viewer("alice")))
    assert earned.points > 0
    async with engine.db.read() as conn:
        chat = (
            await conn.execute(
                text(
                    "SELECT typeof(cause_ref), typeof(stream_session_id), typeof(ref) "
                    "FROM events WHERE kind = 'chat'"
                )
            )
        ).one()
        award = (
            await conn.execute(
                text("SELECT typeof(ref), typeof(cause_ref) FROM events WHERE kind = 'award'")
            )
        ).one()
        payment = (
            await conn.execute(text("SELECT typeof(actor), typeof(refund_of) FROM transactions"))
        ).one()
    assert tuple(chat) == ("null", "null", "text")
    assert tuple(award) == ("null", "text")
    assert tuple(payment) == ("null", "null")
