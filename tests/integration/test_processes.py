"""Several real bot processes on one database: the writer's guarantees hold across processes.

Each test starts real subprocesses (``bot_process.py``) that open the database the way the bot
does. Spends race on both backends (a SQLite file allows several writers too, one at a time);
the queue tests are about PostgreSQL, where several bots may share one queue.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pixelbot.clock import FakeClock
from pixelbot.config import Config
from pixelbot.db.models import QueueItem, Transaction
from pixelbot.testing import assert_verified, balance_of, make_config, open_test_engine, viewer
from pixelbot.testing_db import Backend

PROGRAM = Path(__file__).with_name("bot_process.py")
ALICE = viewer("alice")
REDEEMS = {"tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}}}
SHARED_QUEUE = "several bots share one queue only on a server database (a SQLite file is one bot's)"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PROGRAM), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def processes(*commands: tuple[str, ...]) -> Iterator[list[subprocess.Popen[str]]]:
    running = [start(*command) for command in commands]
    try:
        yield running
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


async def test_concurrent_spends_from_two_processes_never_overspend(
    config: Config, clock: FakeClock, db_backend: Backend
) -> None:
    balance, cost, per_process = 10_000, 37, 500
    async with open_test_engine(config, clock) as engine:
        entry = await engine.ledger.grant(ALICE, balance, reason="test")
    url = config.database.url
    spend = ("spend", url, str(entry.user_id), str(per_process), str(cost))
    outputs = await race(spend, spend)
    successes = sum(o["ok"] for o in outputs)
    assert successes == balance // cost  # 270 of 1,000: exactly what the balance pays for
    assert sum(o["refused"] for o in outputs) == 2 * per_process - balance // cost
    if db_backend.name == "postgresql":  # row locks queue fairly: both processes really took part
        # (SQLite's busy handler retries by sleeping, so one process may win every time)
        assert all(o["ok"] > 0 for o in outputs), outputs
    async with open_test_engine(config, clock) as engine:
        assert await balance_of(engine, ALICE) == balance % cost
        async with engine.db.read() as conn:
            spends = await conn.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.kind == "spend")
            )
        assert spends == successes
        await assert_verified(engine)


async def race(*commands: tuple[str, ...]) -> list[dict[str, Any]]:
    """Start the processes, let each open the database, then set them all off at once."""
    with processes(*commands) as procs:
        for proc in procs:
            assert proc.stdout is not None
            assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = []
        for proc in procs:
            out, err = await asyncio.to_thread(proc.communicate, timeout=300)
            assert proc.returncode == 0, err
            outputs.append(json.loads(out))
    assert [o["errors"] for o in outputs] == [[]] * len(outputs)
    return outputs


@pytest.mark.parametrize(("key", "allowed"), [("hug", 1), ("limited", 3)])
async def test_cooldowns_and_limits_hold_across_processes(
    config: Config, clock: FakeClock, key: str, allowed: int
) -> None:
    """A global cooldown and a per-stream limit have no row to lock before the first use: two
    processes redeeming at once (different viewers, so no wallet lock orders them) still let
    exactly as many through as the rule allows."""
    async with open_test_engine(config, clock):
        pass  # migrated once, before the race
    url = config.database.url
    outputs = await race(("redeem", url, key, "a", "20"), ("redeem", url, key, "b", "20"))
    assert sum(o["ok"] for o in outputs) == allowed
    assert sum(o["refused"] for o in outputs) == 40 - allowed


async def buy(config: Config, clock: FakeClock, texts: list[str]) -> list[int]:
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 25 * len(texts), reason="test")
        session_id, since = await engine.streams.window()
        ids = []
        for index, text in enumerate(texts):
            bought = await engine.redeems.redeem(
                "tts",
                engine.catalog.get("tts"),
                ALICE,
                text,
                ref=f"buy:{index}",
                stream_session_id=session_id,
                counts_since=since,
            )
            assert bought.item_id is not None
            ids.append(bought.item_id)
        return ids


def log_lines(log: Path) -> list[tuple[str, str, int]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [(w, n, int(i)) for w, n, i in (line.split() for line in lines) if w != "ready"]


async def wait_for(
    check: Callable[[], bool | Awaitable[bool]],
    procs: list[subprocess.Popen[str]],
    seconds: float = 120.0,  # a hang guard for a loaded machine, not a timing assertion
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        for proc in procs:  # a bot process that died says why, instead of a bare time-out
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(f"bot process exited with {proc.returncode}: {err}")
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def statuses(config: Config, clock: FakeClock) -> dict[int, str]:
    async with open_test_engine(config, clock) as engine, engine.db.read() as conn:
        rows = await conn.execute(select(QueueItem.id, QueueItem.status))
        return dict(rows.all())


@pytest.fixture
def queue_config(db_path: Path) -> Config:
    return make_config(db_path, redeems=REDEEMS)


@pytest.mark.postgresql_only(SHARED_QUEUE)
async def test_each_queue_item_is_run_by_exactly_one_of_two_processes(
    queue_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    log = tmp_path / "work.log"
    url = queue_config.database.url
    with processes(("work", url, "a", str(log), "5"), ("work", url, "b", str(log), "5")) as procs:
        await wait_for(lambda: log.exists() and log.read_text().count("ready") == 2, procs)
        ids = await buy(queue_config, clock, ["fast"] * 60)
        await wait_for(lambda: sum(w == "done" for w, _, _ in log_lines(log)) >= 60, procs)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
    started = [(name, item) for what, name, item in log_lines(log) if what == "start"]
    assert sorted(item for _, item in started) == sorted(ids)  # each once, none twice
    assert {name for name, _ in started} == {"a", "b"}  # both processes took work
    assert set((await statuses(queue_config, clock)).values()) == {"done"}
    async with open_test_engine(queue_config, clock) as engine:
        assert await balance_of(engine, ALICE) == 0  # nothing refunded
        await assert_verified(engine)


@pytest.mark.postgresql_only(SHARED_QUEUE)
async def test_a_killed_process_leaves_its_item_to_the_other_without_touching_live_ones(
    queue_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    log = tmp_path / "work.log"
    url = queue_config.database.url
    with processes(("work", url, "a", str(log), "3")) as (a,):
        await wait_for(lambda: log.exists() and "ready a" in log.read_text(), [a])
        ids = await buy(queue_config, clock, ["hang", "slow", "slow", "slow"])
        await wait_for(lambda: ("start", "a", ids[0]) in log_lines(log), [a])
        # b starts while a runs the first item under a live lease: b must leave it alone
        with processes(("work", url, "b", str(log), "3")) as (b,):
            await wait_for(lambda: "ready b" in log.read_text(), [a, b])
            await asyncio.sleep(4)  # longer than a lease: a keeps renewing, b must wait
            assert (await statuses(queue_config, clock))[ids[0]] == "running"
            os.kill(a.pid, signal.SIGKILL)  # a dies mid-item
            await wait_for(
                lambda: sum(w == "done" and n == "b" for w, n, _ in log_lines(log)) == 3, [b]
            )

            async def taken_over() -> bool:
                return (await statuses(queue_config, clock))[ids[0]] == "failed"

            await wait_for(taken_over, [b])
            b.send_signal(signal.SIGTERM)
            await asyncio.to_thread(b.wait, 30)
    final = await statuses(queue_config, clock)
    assert final == {ids[0]: "failed", ids[1]: "done", ids[2]: "done", ids[3]: "done"}
    async with open_test_engine(queue_config, clock) as engine:
        async with engine.db.read() as conn:
            refunds = list(
                (
                    await conn.execute(
                        select(Transaction.refund_of).where(Transaction.kind == "refund")
                    )
                ).scalars()
            )
        assert len(refunds) == 1  # the dead process's item only, exactly once
        assert await balance_of(engine, ALICE) == 25
        await assert_verified(engine)
