"""The data services behind ``bot.py import``, ``export`` and ``points history``, on both
backends: the sample exports in ``tests/data/import/`` follow the StreamElements points CSV
and Firebot's ``users.db`` (NeDB) formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.models import Base
from pixelbot.economy.exports import count_rows, export_rows, ledger_history
from pixelbot.economy.import_formats import read_firebot, read_streamelements
from pixelbot.economy.imports import import_balances
from pixelbot.errors import ImportFileError
from pixelbot.testing import EventFactory, assert_verified, make_config, open_test_engine, viewer

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "import"
SE_FILE = SAMPLES / "streamelements-points.csv"
FIREBOT_FILE = SAMPLES / "firebot-users.db"
TRANSACTIONS = Base.metadata.tables["transactions"]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "pixel.db")


async def balances(engine: Engine) -> dict[str, int]:
    found = {}
    for login in ("alice", "bob", "carol", "dave", "eve", "frank_", "gina", "hank", "ivy"):
        try:
            user_id = await engine.wallets.find(login, "twitch")
        except Exception:
            continue
        found[login] = (await engine.wallets.summary(user_id)).points
    return found


async def ledger(engine: Engine) -> list[tuple[Any, ...]]:
    async with engine.db.read() as conn:
        return [tuple(row) for row in await conn.execute(select(TRANSACTIONS))]


async def test_a_streamelements_import_matches_by_id_then_login_and_runs_once(
    config: Config,
) -> None:
    clock = FakeClock(utc(2026, 3, 1, 20))
    async with open_test_engine(config, clock) as engine:
        # carol chatted here before: her row has no id, so her login finds her
        await engine.earning.handle(EventFactory(clock).chat(viewer("carol", user_id="33333")))
        parsed = read_streamelements(SE_FILE)
        first = await import_balances(
            engine.db, engine.ledger, parsed, source="streamelements", platform="twitch"
        )
        assert (first.new, first.by_id, first.by_login) == (2, 0, 1)  # alice, frank_; carol
        assert first.points == 1200 + 1250 + 450
        assert first.zero == 1  # bob has nothing to bring
        assert [row.login for row in first.unmatched] == ["dave"]  # no id, never seen here
        assert [str(bad) for bad in first.bad] == [
            "line 6: 'lots' is not a whole number of points",
            "line 8: alice again (first on line 2); the first is used",
        ]
        after_first = await ledger(engine)

        again = await import_balances(
            engine.db, engine.ledger, parsed, source="streamelements", platform="twitch"
        )
        assert (again.imported, again.already, again.points) == (0, 3, 0)
        assert await ledger(engine) == after_first  # the second run changed nothing
        assert await balances(engine) == {"alice": 1200, "carol": 451, "frank_": 1250}
        await assert_verified(engine)


async def test_a_viewer_listed_without_an_id_in_a_later_export_is_not_paid_twice(
    config: Config, tmp_path: Path
) -> None:
    """The grant is keyed by the identity it lands on: alice came in by her id; an export that
    lists her by login only finds the same identity and changes nothing."""
    later = tmp_path / "later.csv"
    later.write_text(
        "Username,Twitch User ID,Current Points,All Time Points\nalice,,1200,5000\n",
        encoding="utf-8",
    )
    async with open_test_engine(config, FakeClock(utc(2026, 3, 1, 20))) as engine:
        await import_balances(
            engine.db,
            engine.ledger,
            read_streamelements(SE_FILE),
            source="streamelements",
            platform="twitch",
        )
        before = await ledger(engine)
        again = await import_balances(
            engine.db,
            engine.ledger,
            read_streamelements(later),
            source="streamelements",
            platform="twitch",
        )
        assert (again.imported, again.already) == (0, 1)
        assert await ledger(engine) == before
        assert (await balances(engine))["alice"] == 1200


async def test_a_firebot_database_keeps_the_last_version_of_each_viewer(config: Config) -> None:
    parsed = read_firebot(FIREBOT_FILE)
    assert [(row.line, row.login, row.points) for row in parsed.rows] == [
        (1, "alice", 300),
        (5, "gina", 95),  # her later line wins; hank (line 3) was deleted on line 4
    ]
    assert [bad.line for bad in parsed.bad] == [6]  # ivy's line is cut short
    async with open_test_engine(config) as engine:
        report = await import_balances(
            engine.db, engine.ledger, parsed, source="firebot", platform="twitch"
        )
        assert (report.new, report.points) == (2, 395)
        rerun = await import_balances(
            engine.db,
            engine.ledger,
            read_firebot(FIREBOT_FILE),
            source="firebot",
            platform="twitch",
        )
        assert (rerun.imported, rerun.already) == (0, 2)
        assert await balances(engine) == {"alice": 300, "gina": 95}
        summary = await engine.wallets.summary(await engine.wallets.find("gina", "twitch"))
        assert summary.display_name == "GinaTV"
        await assert_verified(engine)


@pytest.mark.no_database
def test_files_that_are_not_exports_are_refused_whole(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,score\nalice,3\n")
    with pytest.raises(ImportFileError, match="Current Points"):
        read_streamelements(wrong)
    two = tmp_path / "users.db"
    two.write_text(
        '{"_id":"1","username":"a","currency":{"gold":1}}\n'
        '{"_id":"2","username":"b","currency":{"gems":2}}\n'
    )
    with pytest.raises(ImportFileError, match="--currency"):
        read_firebot(two)
    assert [row.points for row in read_firebot(two, "gems").rows] == [0, 2]
    with pytest.raises(ImportFileError, match="no currency 'coins'"):
        read_firebot(two, "coins")
    with pytest.raises(ImportFileError, match="is it Firebot's users"):
        read_firebot(SE_FILE)  # a CSV is no NeDB database


async def test_history_and_export_read_every_row_in_order(config: Config) -> None:
    async with open_test_engine(config) as engine:
        alice = viewer("alice")
        await engine.ledger.grant(alice, 100, reason="welcome")
        await engine.ledger.spend(alice, 30, reason="redeem:tts")
        await engine.ledger.adjust(alice, 5, actor="mod")
        rows = [row async for row in ledger_history(engine.db, await engine.wallets.find("alice"))]
        assert [(r.amount, r.balance_after, r.running) for r in rows] == [
            (100, 100, 100),
            (-30, 70, 70),
            (5, 75, 75),
        ]
        assert rows[2].actor == "mod"
        for n in range(30):
            await engine.ledger.grant(viewer(f"v{n}"), n + 1, reason="bonus")
        users = [row async for row in export_rows(engine.db, "users")]
        assert len(users) == await count_rows(engine.db, "users") == 31
        assert users[0]["login"] == "alice" and users[0]["points"] == 75
        ledger_rows = [row async for row in export_rows(engine.db, "ledger")]
        assert [row["id"] for row in ledger_rows] == sorted(row["id"] for row in ledger_rows)
        assert len(ledger_rows) == 33
        events = [row async for row in export_rows(engine.db, "events")]
        assert len(events) == await count_rows(engine.db, "events") > 0


async def test_export_pages_through_more_rows_than_a_page(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pixelbot.economy.exports.PAGE", 7)
    async with open_test_engine(config) as engine:
        for n in range(20):
            await engine.ledger.grant(viewer(f"v{n}"), 1, reason="bonus")
        ids = [row["id"] async for row in export_rows(engine.db, "ledger")]
        assert len(ids) == len(set(ids)) == 20
