"""PostgreSQL faults while the bot runs (issue 17): the server goes away and comes back; another
program deadlocks with the writer.

The bot runs as ``python bot.py console`` in a subprocess against a throwaway server of this
module's own (``pixelbot/db/throwaway.py``), which the test stops the way an operator's restart
does (``pg_ctl stop -m fast``: sessions are told "terminating connection due to administrator
command", then the socket is gone) and starts again on the same port. While it is down, chat is
answered with "can't save right now" and the operator reads one line; once it is back, the bot
saves again without a restart, and the books hold exactly what was acknowledged.

A deadlock (or serialization failure) is PostgreSQL rolling one transaction back so another can
go on: the writer runs its batch again, and the caller never hears of it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest

from pixelbot.app import Engine
from pixelbot.db.throwaway import PostgresServer, postgres_server
from pixelbot.testing import assert_verified, balance_of, viewer
from tests.integration.test_cli import bot
from tests.integration.test_db_faults import CANT_SAVE, live


def pg_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f'database:\n  url: "{url}"\n', encoding="utf-8")
    result = bot(
        "console", "--config", config, "--script", "-", stdin="/follow alice\n/follow bob\n"
    )
    assert result.returncode == 0, result.stderr
    return config


def rows(server: PostgresServer, url: str, sql: str) -> list[tuple[object, ...]]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def fetch() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(record) for record in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.mark.backends_inside(
    "starts a PostgreSQL server of its own, to stop and restart it under the bot"
)
def test_a_server_restart_is_one_line_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    with postgres_server() as server:
        url = server.create_database("outage")
        config = pg_config(tmp_path, url)
        with live(config) as console:
            console.send("alice: !give bob 5")
            assert "gave 5" in console.expect("@alice")
            server.stop("fast")
            # Down: every line is answered or refused cleanly, and the bot keeps reading chat.
            console.send("alice: !give bob 7")
            assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
            console.send("carol: hello while the server is down")
            console.send("alice: !points")
            assert console.expect("@alice") == f"Pixel: @alice {CANT_SAVE}"
            console.send("/follow dave")
            assert "not saved" in console.expect("[console]")
            server.start()
            # Back: saving resumes in the same run, with no restart of the bot.
            console.send("alice: !give bob 3")
            assert "gave 3" in console.expect("@alice")
            console.send("carol: hello again")
            console.send("bob: !points")
            bob_says = console.expect("@bob")
            stderr = console.quit()
        assert "Traceback" not in stderr, stderr
        told = [line for line in stderr.splitlines() if "PostgreSQL server at" in line]
        assert len(told) == 1, stderr  # one line per outage, however many lines chat sent
        assert "nothing is saved until this is fixed" in told[0]
        assert "reconnects by itself" in told[0]
        assert "can save again" in stderr
        assert "pixel@127.0.0.1" in told[0] and ":" + str(server.port) in told[0]

        # Exactly the acknowledged gives, each once; the refused one is nowhere.
        gives = rows(
            server,
            url,
            "SELECT ref, amount FROM transactions WHERE kind = 'transfer' ORDER BY id",
        )
        assert sorted(amount for _ref, amount in gives) == [-5, -3, 3, 5], gives
        balances = dict(rows(server, url, "SELECT display_name, points FROM users"))
        assert balances["bob"] - balances["alice"] == 58 - 42  # 50-5-3 and 50+5+3, plus chat
        assert bob_says == f"Pixel: @bob you have {balances['bob']} pixels"
        chat = [text for (text,) in rows(server, url, "SELECT payload->>'text' FROM events")]
        assert "hello again" in chat
        assert "hello while the server is down" not in chat  # refused, not saved later
        assert "dave" not in balances  # the follow during the outage was refused, not queued
        assert bot("db", "verify", "--config", config).returncode == 0


@pytest.mark.postgresql_only("SQLite has one write lock for the whole file: no deadlocks")
async def test_a_deadlock_with_another_program_is_run_again_and_saved_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = viewer("alice"), viewer("bob")
    await engine.ledger.grant(alice, 100, reason="seed")
    await engine.ledger.grant(bob, 100, reason="seed")
    alice_id = await engine.wallets.find_identity(alice)
    bob_id = await engine.wallets.find_identity(bob)
    url = engine.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(url)
    caplog.set_level(logging.DEBUG, logger="pixelbot.economy.writer")
    try:
        # Another program locks bob, then alice: the opposite order to the writer's (by id).
        # It waits 10 s before looking for deadlocks, so PostgreSQL picks the writer's batch.
        await other.execute("SET deadlock_timeout = '10s'")
        async with other.transaction():
            await other.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", bob_id)
            give = asyncio.create_task(engine.ledger.transfer(alice, bob_id, 5, ref="give:1"))
            # the writer holds alice and waits for bob (had this program locked alice first,
            # the writer would only wait for it: no deadlock, nothing to test)
            await until_blocked_by(other, "the writer to hold alice and wait for bob")
            await other.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", alice_id)
            await asyncio.sleep(0.1)
            assert not give.done()  # it waits again, for bob, until this program is done
        transfer = await asyncio.wait_for(give, timeout=30)  # a hang guard
    finally:
        await other.close()
    assert "deadlock detected" in caplog.text  # it did conflict, and was run again
    assert transfer.sent.balance == 95
    assert await balance_of(engine, alice) == 95
    assert await balance_of(engine, bob) == 105
    async with engine.db.read() as conn:
        refs = (
            await conn.exec_driver_sql("SELECT count(*) FROM transactions WHERE ref LIKE 'give:1%'")
        ).scalar_one()
    assert refs == 2  # one row each side, once
    await assert_verified(engine)


async def until_blocked_by(conn: asyncpg.Connection, what: str) -> None:
    """Wait until another session waits for a lock ``conn`` holds, as PostgreSQL's own lock
    table says (a fixed sleep guessed how long the writer takes to get there on a busy
    machine)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # a hang guard
    blocker = conn.get_server_pid()
    while not await conn.fetchval(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        blocker,
    ):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
