"""Cleanup on real databases (SQLite files and PostgreSQL): old chat traffic, finished queue
items, TTS files and expired ``!link`` codes go; the ledgers, and every event a ledger row or a
redeem refers to, stay whatever the retention; ``db verify`` passes after every run; a dry run
deletes nothing."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pixelbot.config import Config
from pixelbot.config.maintenance import RetentionSettings
from pixelbot.db.cleanup import CHAT_EVENT_KINDS, clean_up
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.db.verify import verify
from pixelbot.errors import LinkRefused
from pixelbot.events import Viewer
from pixelbot.scheduler.runner import JOB_RUNS, last_runs
from pixelbot.testing import ConsoleSession, console_session, make_config

EVENTS = Base.metadata.tables["events"]
TRANSACTIONS = Base.metadata.tables["transactions"]
XP_TRANSACTIONS = Base.metadata.tables["xp_transactions"]
QUEUE_ITEMS = Base.metadata.tables["queue_items"]
COOLDOWNS = Base.metadata.tables["cooldowns"]
LINK_CODES = Base.metadata.tables["link_codes"]

DAY = 86_400


def cleanup_config(tmp_path: Path, **sections: Any) -> Config:
    return make_config(
        tmp_path / "pixel.db",
        commands={"reply_rate": {"messages": 1000, "per": "30s"}},
        economy={
            "starting_points": 1000,
            "earn": {"chat": {"points": 1, "xp": 1, "cooldown": "60s"}},
        },
        redeems={"spin": {"title": "Spin", "cost": 10, "action": {"type": "wheel"}}},
        **sections,
    )


async def chat_texts(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(EVENTS.c.payload).where(EVENTS.c.kind == "chat").order_by(EVENTS.c.id)
        )
        return [str(payload.get("text")) for payload in rows.scalars()]


async def ledger_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        points = await conn.execute(select(TRANSACTIONS).order_by(TRANSACTIONS.c.id))
        xp = await conn.execute(select(XP_TRANSACTIONS).order_by(XP_TRANSACTIONS.c.id))
        return [tuple(row) for row in points] + [tuple(row) for row in xp]


async def referenced_event_refs(db: Database) -> set[str]:
    """Refs of events a ledger row carries, or a redeem names as the line that asked."""
    async with db.read() as conn:
        events = {ref for ref in (await conn.execute(select(EVENTS.c.ref))).scalars() if ref}
        ledger = set((await conn.execute(select(TRANSACTIONS.c.ref))).scalars())
        ledger |= set((await conn.execute(select(XP_TRANSACTIONS.c.ref))).scalars())
    return {ref for ref in events if ref in ledger or f"redeem:{ref}" in events}


async def other_events(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(EVENTS.c.id).where(EVENTS.c.kind.not_in(CHAT_EVENT_KINDS)).order_by(EVENTS.c.id)
        )
        return list(rows.scalars())


async def count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        rows = await conn.execute(select(table.c.id))
        return len(rows.all())


def old_file(path: Path, when: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + bytes(1000))
    os.utime(path, (when.timestamp(), when.timestamp()))


async def a_stream_long_ago(bot: ConsoleSession) -> None:
    await bot.run(
        "/live",
        "alice: hello",  # paid: its ledger row carries its ref
        "alice: spam",  # on cooldown: nobody refers to it
        "alice: !spin",  # on cooldown, but a redeem (and its queue item) names it
        "/tick 3600",
        "/offline",
    )


async def test_cleanup_removes_old_chat_items_files_and_keeps_what_is_referenced(
    tmp_path: Path,
) -> None:
    config = cleanup_config(tmp_path)
    tts = Path(config.tts.dir)
    async with console_session(config) as bot:
        db = bot.app.engine.db
        await a_stream_long_ago(bot)
        await bot.run("/tick 8640000")  # 100 days later
        await bot.run("bob: recent")  # new: stays whatever it is
        now = bot.clock.now()
        old_file(tts / "tts-1.wav", now - timedelta(days=8))
        old_file(tts / "tts-2.wav", now - timedelta(days=1))
        ledger_before = await ledger_rows(db)
        referenced = await referenced_event_refs(db)
        assert await count(db, QUEUE_ITEMS) == 1
        assert await count(db, COOLDOWNS) >= 1

        report = await clean_up(db, config.retention, now, tts_dir=tts)

        removed = report.removed
        assert (removed["chat_events"], removed["queue_items"], removed["tts_files"]) == (1, 1, 1)
        assert report.removed["cooldowns"] >= 1
        assert await chat_texts(db) == ["hello", "!spin", "recent"]
        assert await ledger_rows(db) == ledger_before
        assert referenced <= await referenced_event_refs(db)
        assert await count(db, QUEUE_ITEMS) == 0
        assert await count(db, COOLDOWNS) == 1  # bob's, still running
        assert not (tts / "tts-1.wav").exists() and (tts / "tts-2.wav").exists()
        assert report.bytes_freed["tts_files"] == 1004
        assert report.verified is not None and report.verified.ok
        assert report.figures()["verified"] is True
        await bot.verified()
        # 1000 to start, +1 for "hello", -10 for the spin, +1 for this line
        assert await bot.run("alice: !points") == ["Pixel: @alice you have 992 pixels"]


async def test_a_dry_run_counts_the_same_rows_and_deletes_nothing(tmp_path: Path) -> None:
    config = cleanup_config(tmp_path)
    tts = Path(config.tts.dir)
    async with console_session(config) as bot:
        db = bot.app.engine.db
        await a_stream_long_ago(bot)
        await bot.run("/tick 8640000")
        now = bot.clock.now()
        old_file(tts / "tts-1.wav", now - timedelta(days=30))
        texts = await chat_texts(db)
        counts = [await count(db, table) for table in (QUEUE_ITEMS, COOLDOWNS, EVENTS)]

        dry = await clean_up(db, config.retention, now, tts_dir=tts, dry_run=True)

        assert dry.dry_run and dry.removed["chat_events"] == 1
        assert dry.removed["queue_items"] == 1 and dry.removed["tts_files"] == 1
        assert await chat_texts(db) == texts
        assert [await count(db, t) for t in (QUEUE_ITEMS, COOLDOWNS, EVENTS)] == counts
        assert (tts / "tts-1.wav").exists()
        assert dry.bytes_freed["database"] == 0

        real = await clean_up(db, config.retention, now, tts_dir=tts)
        assert real.removed == dry.removed


async def link_code_ids(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(select(LINK_CODES.c.id).order_by(LINK_CODES.c.id))
        return list(rows.scalars())


async def test_expired_link_codes_go_but_any_a_link_ledgered_stays(tmp_path: Path) -> None:
    """A ``!link`` code is good for 10 minutes: one that ran out unused is dead weight and goes.
    A used one stays (its link's ledger rows are ``link:<code id>:out``/``:in``), and so does
    any code a ledger row names even if nothing marked it used; a live one stays."""
    config = cleanup_config(tmp_path)
    alice_tw, alice_dc = (
        Viewer("twitch", "tw-a", "alice", "Alice"),
        Viewer("discord", "dc-a", "a", "A"),
    )
    bob, carol = Viewer("twitch", "tw-b", "bob", "Bob"), Viewer("twitch", "tw-c", "carol", "Carol")
    dave_tw, dave_dc = Viewer("twitch", "tw-d", "dave", "Dave"), Viewer("discord", "dc-d", "d", "D")
    async with console_session(config) as bot:
        db, links = bot.app.engine.db, bot.app.engine.links
        await bot.app.engine.ledger.grant(alice_dc, 50, reason="opening")
        await links.link(alice_dc, (await links.create_code(alice_tw)).code)
        bob_code = (await links.create_code(bob)).code  # never used
        await links.link(dave_dc, (await links.create_code(dave_tw)).code)
        used, unused, dave = await link_code_ids(db)
        async with db.write() as conn:  # a code whose link is ledgered but not marked used
            await conn.execute(
                LINK_CODES.update().where(LINK_CODES.c.id == dave).values(used_at=None)
            )
        bot.clock.advance(timedelta(minutes=10))  # all three ran out
        carol_code = (await links.create_code(carol)).code  # live
        live = (await link_code_ids(db))[-1]
        ledger = await ledger_rows(db)

        dry = await clean_up(db, config.retention, bot.clock.now(), dry_run=True)
        assert dry.removed["link_codes"] == 1
        assert await link_code_ids(db) == [used, unused, dave, live]

        report = await clean_up(db, config.retention, bot.clock.now())

        assert report.removed["link_codes"] == 1 and report.figures()["removed"]["link_codes"] == 1
        assert await link_code_ids(db) == [used, dave, live]
        assert await ledger_rows(db) == ledger
        assert report.verified is not None and report.verified.ok, report.figures()
        assert (await verify(db)).ok
        # the deleted code is refused like any unknown one; the live one still links
        with pytest.raises(LinkRefused):
            await links.link(Viewer("discord", "dc-b", "b", "B"), bob_code)
        await links.link(Viewer("discord", "dc-c", "c", "C"), carol_code)
        again = await clean_up(db, config.retention, bot.clock.now())
        assert again.removed["link_codes"] == 0


async def test_nothing_is_deleted_while_it_is_young_or_kept_forever(tmp_path: Path) -> None:
    config = cleanup_config(
        tmp_path,
        retention={"chat_events": None, "finished_queue_items": "365d", "tts_files": None},
    )
    async with console_session(config) as bot:
        db = bot.app.engine.db
        await a_stream_long_ago(bot)
        await bot.run("/tick 8640000")
        report = await clean_up(db, config.retention, bot.clock.now(), tts_dir=None)
        assert (report.removed["chat_events"], report.removed["queue_items"]) == (0, 0)
        assert await chat_texts(db) == ["hello", "spam", "!spin"]


async def test_items_of_the_live_stream_are_kept_for_its_limits(tmp_path: Path) -> None:
    """A redeem's per-stream limit counts the live stream's items: deleting one would let a
    viewer buy it again, so cleanup leaves them until the stream has ended."""
    config = cleanup_config(tmp_path, retention={"finished_queue_items": "0s"})
    async with console_session(config) as bot:
        db = bot.app.engine.db
        await bot.run("/live", "alice: !spin", "/tick 60")
        live = await clean_up(db, config.retention, bot.clock.now())
        assert live.removed["queue_items"] == 0
        await bot.run("/offline", "/tick 60")
        ended = await clean_up(db, config.retention, bot.clock.now())
        assert ended.removed["queue_items"] == 1


@pytest.mark.sqlite_only("auto_vacuum and the file's pages are SQLite's")
async def test_a_new_sqlite_file_gives_freed_pages_back(tmp_path: Path) -> None:
    config = cleanup_config(tmp_path, retention={"chat_events": "0s"})
    async with console_session(config) as bot:
        db = bot.app.engine.db
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar_one() == 2
        await bot.run("/live", "alice: hello", "/offline", "/tick 60")
        async with db.write() as conn:  # a long-gone busy chat, faster than through the bot
            await conn.execute(
                EVENTS.insert(),
                [
                    {
                        "kind": "chat",
                        "platform": "console",
                        "ref": f"console:chat:old-{n}",
                        "payload": {"text": "x" * 400},
                        "created_at": bot.clock.now() - timedelta(days=1),
                    }
                    for n in range(2000)
                ],
            )
        report = await clean_up(db, config.retention, bot.clock.now())
        assert report.removed["chat_events"] == 2000
        assert "incremental vacuum gave back" in report.vacuum
        assert report.bytes_freed["database"] > 500_000
        assert report.ok


_examples = itertools.count()

retentions = st.builds(
    RetentionSettings,
    chat_events=st.none() | st.integers(0, 200).map(lambda d: timedelta(days=d)),
    finished_queue_items=st.none() | st.integers(0, 200).map(lambda d: timedelta(days=d)),
    tts_files=st.none(),
)
activity = st.lists(
    st.sampled_from(["alice: hi", "bob: hey", "carol: !spin", "alice: !spin", "/tick 61"]),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def property_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cleanup-property")


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    live=st.booleans(),
    lines=activity,
    days_later=st.integers(0, 300),
    retention=retentions,
)
def test_ledger_rows_and_the_events_they_refer_to_survive_any_retention(
    property_dir: Path,
    live: bool,
    lines: list[str],
    days_later: int,
    retention: RetentionSettings,
) -> None:
    import asyncio

    config = cleanup_config(property_dir / f"example-{next(_examples)}")

    async def run() -> None:
        async with console_session(config) as bot:
            db = bot.app.engine.db
            await bot.run(*(["/live"] if live else []), *lines, "/offline", "/tick 60")
            await bot.run(f"/tick {days_later * DAY + 1}")
            now = bot.clock.now()
            ledger = await ledger_rows(db)
            referenced = await referenced_event_refs(db)
            timeline = await other_events(db)

            report = await clean_up(db, retention, now)

            assert await ledger_rows(db) == ledger
            assert referenced <= await referenced_event_refs(db)
            assert report.verified is not None and report.verified.ok, report.figures()
            if retention.chat_events is not None:  # and what may go, went
                again = await clean_up(db, retention, now, dry_run=True)
                assert again.removed["chat_events"] == 0
            assert await other_events(db) == timeline  # the rest of the timeline is all there
            await bot.verified()

    asyncio.run(run())


async def test_the_scheduled_job_runs_the_same_cleanup_and_records_it(tmp_path: Path) -> None:
    config = cleanup_config(tmp_path, schedule={"cleanup": {"every": "1d"}})
    async with console_session(config) as bot:
        await a_stream_long_ago(bot)
        await bot.run("/tick 8640000")
        scheduler = bot.app.scheduler
        assert await scheduler.run("cleanup") is True
        runs = await last_runs(bot.app.engine.db)
        figures = runs["cleanup"].figures
        assert runs["cleanup"].outcome == "ok" and figures is not None
        assert figures["removed"]["chat_events"] == 1 and figures["verified"] is True
        assert await chat_texts(bot.app.engine.db) == ["hello", "!spin"]


async def test_old_job_records_go_but_each_jobs_latest_stays(tmp_path: Path) -> None:
    config = cleanup_config(tmp_path)
    async with console_session(config) as bot:
        db = bot.app.engine.db
        now = bot.clock.now()
        old = now - timedelta(days=40)
        rows = [
            {"job": "backup", "started_at": old, "finished_at": old, "outcome": "ok"},
            {"job": "backup", "started_at": old, "finished_at": old, "outcome": "failed"},
            {"job": "backup", "started_at": now, "finished_at": now, "outcome": "ok"},
            {"job": "weekly", "started_at": old, "finished_at": old, "outcome": "ok"},
        ]
        async with db.write() as conn:
            await conn.execute(JOB_RUNS.insert(), rows)
        report = await clean_up(db, config.retention, now)
        assert report.removed["job_runs"] == 2
        runs = await last_runs(db)
        assert runs["backup"].started_at == now and runs["weekly"].started_at == old
