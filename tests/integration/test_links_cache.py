"""The writer's cache (``economy/cache.py``) stays invisible across ``!link`` and ``!unlink``:
identities change wallets and wallets are joined into others, and a seeded mix of every kind
of operation must leave exactly what the uncached writer (PostgreSQL's path) leaves."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.verify import verify
from pixelbot.economy.cache import WriterCache
from pixelbot.economy.queue import Payout
from pixelbot.events import Viewer
from pixelbot.testing import EventFactory, make_config, open_test_engine

pytestmark = pytest.mark.sqlite_only("the writer's cache exists only on SQLite")

T0 = utc(2026, 3, 1, 20, 0, 0)
PEOPLE = ("ann", "ben", "cal")
PLATFORMS = ("twitch", "discord", "joystick")
KINDS = ["grant", "spend", "chat", "chat", "redeem", "fail", "finish", "refund", "advance"]
KINDS += ["code", "code", "link", "link", "link", "unlink", "unlink"]


class _NoCache(WriterCache):
    """Nothing is ever remembered (what the writer does on PostgreSQL)."""

    def validate(self, data_version: int | None, now: datetime) -> bool:
        self.clear()
        return False


def _config(db_path: Path) -> Config:
    return make_config(
        db_path,
        redeems={
            "tts": {
                "title": "TTS",
                "cost": 25,
                "cooldown": "20s",
                "max_per_user_per_stream": 3,
                "action": {"type": "tts"},
            }
        },
        economy={
            "starting_points": 30,
            "earn": {"chat": {"points": 3, "xp": 40, "cooldown": "15s"}},
        },
        xp={"level_rewards": {2: {"points": 30}, 3: {"points": 40}}},
    )


def _who(person: int, platform: int) -> Viewer:
    name = PEOPLE[person]
    return Viewer(PLATFORMS[platform], f"{PLATFORMS[platform]}-{name}", name, name.title())


async def _run(db_path: Path, seed: int, cached: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    clock = FakeClock(T0)
    events = {p: EventFactory(clock, p) for p in PLATFORMS}
    outcomes: list[list[str]] = []
    async with open_test_engine(_config(db_path), clock) as engine:
        engine.links.rng = random.Random(seed)
        if not cached:
            engine.writer.cache = _NoCache()
        codes: list[tuple[str, int]] = []  # (code, the platform it was given on)
        joined: list[tuple[int, int]] = []  # (person, platform) of links tried
        redeems = spends = 0
        for chunk in range(rng.randint(5, 12)):
            calls: list[Any] = []
            for n in range(rng.randint(1, 6)):
                kind = rng.choice(KINDS)
                person, platform = rng.randrange(3), rng.randrange(3)
                who, ref, amount, pick = _who(person, platform), f"{chunk}-{n}", 0, 0
                amount, pick = rng.randint(1, 90), rng.randrange(10)
                if kind == "grant":
                    calls.append(engine.ledger.grant(who, amount, reason="g", ref=ref))
                elif kind == "spend":
                    spends += 1
                    calls.append(engine.ledger.spend(who, amount, reason="s", ref=f"s{spends}"))
                elif kind == "chat":
                    chat = events[who.platform].chat(who, event_id=f"{seed}-{ref}")
                    calls.append(engine.earning.handle(chat))
                elif kind == "redeem":
                    redeems += 1
                    session_id, since = await engine.streams.window()
                    calls.append(
                        engine.redeems.redeem(
                            "tts",
                            engine.catalog.get("tts"),
                            who,
                            "hi",
                            ref=f"r-{ref}",
                            stream_session_id=session_id,
                            counts_since=since,
                        )
                    )
                elif kind == "fail" and redeems:
                    calls.append(engine.queue.fail(1 + pick % redeems, "no voice"))
                elif kind == "finish" and redeems:
                    prize = Payout(1 + person, "prize", points=amount, xp=amount)
                    calls.append(engine.queue.finish(1 + pick % redeems, payouts=[prize]))
                elif kind == "refund" and spends:
                    calls.append(engine.ledger.refund(f"s{1 + pick % spends}"))
                elif kind == "code":
                    codes.append(((await engine.links.create_code(who)).code, platform))
                elif kind == "link" and codes:
                    # mostly the latest code (the live one), sometimes an older one
                    # mostly a fresh code, sometimes one used or replaced already
                    code, given_on = codes.pop() if pick < 7 else codes[pick % len(codes)]
                    elsewhere = (given_on + 1 + pick % 2) % 3
                    joined.append((person, elsewhere))
                    calls.append(engine.links.link(_who(person, elsewhere), code))
                elif kind == "unlink":
                    # mostly an account that was linked (by someone: it may not be this wallet's)
                    split = joined[pick % len(joined)][1] if joined and pick < 8 else platform
                    calls.append(engine.links.unlink(who, PLATFORMS[split], actor="t", ref=ref))
                elif kind == "advance":
                    clock.advance(timedelta(seconds=pick * 3))
            results = await asyncio.gather(*calls, return_exceptions=True)
            outcomes.append([_outcome(result) for result in results])
        report = await verify(engine.db)
        assert report.violations == []
    tables: dict[str, Any] = {"outcomes": outcomes}
    with sqlite3.connect(db_path) as conn:
        for table in ("users", "identities", "transactions", "xp_transactions", "queue_items"):
            tables[table] = conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
        tables["cooldowns"] = conn.execute(
            "SELECT scope, key, expires_at FROM cooldowns ORDER BY scope, key"
        ).fetchall()
    return tables


def _outcome(result: Any) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    return repr(result).replace("'", "")


@pytest.mark.parametrize("seed", range(10))
async def test_links_mixed_with_everything_leave_what_the_uncached_writer_leaves(
    tmp_path: Path, seed: int
) -> None:
    with_cache = await _run(tmp_path / "cached.db", seed, cached=True)
    without = await _run(tmp_path / "uncached.db", seed, cached=False)
    assert with_cache == without
    linked = [o for chunk in with_cache["outcomes"] for o in chunk if o.startswith("Linked(")]
    assert linked, "every seed of the mix links someone"
