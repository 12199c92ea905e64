"""The schema as alembic builds it on a real SQLite file, and the guards the database itself holds.

Every test migrates a fresh file in ``tmp_path`` through ``pixelbot.db.migrate`` (the same path
``Engine.open`` and ``python bot.py db upgrade`` take), never the repository's ``data/``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db import migrate
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.testing_db import database_url

NOW = "2026-03-01 20:00:00.000000"


def head_revision() -> str:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


# What each backend says when a constraint refuses a row.
UNIQUE = r"UNIQUE constraint failed: {0}\.{1}|violates unique constraint \"uq_{0}_{1}\""
FOREIGN_KEY = "FOREIGN KEY constraint failed|violates foreign key constraint"
USERS = Base.metadata.tables["users"]
TRANSACTIONS = Base.metadata.tables["transactions"]
AWARE_NOW = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def table_names(path: Path) -> set[str]:
    """Tables as a separate, plain sqlite3 connection sees them (i.e. committed)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


@pytest.fixture
async def migrated(db_path: Path) -> AsyncIterator[Database]:
    db = Database(database_url(db_path))  # either backend
    await migrate.upgrade(db)
    try:
        yield db
    finally:
        await db.dispose()


# ----------------------------------------------------------------------------- upgrade


@pytest.fixture
def empty_file(db_path: Path) -> Path:
    db_path.touch()  # an existing, empty (0-byte) file: what a fresh install may have
    assert db_path.stat().st_size == 0
    return db_path


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_upgrade_from_an_empty_file_creates_every_table_and_stamps_head(
    empty_file: Path,
) -> None:
    db_path = empty_file
    db = Database(sqlite_url(db_path))
    try:
        assert await migrate.current_revision(db) is None
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == head_revision()
    finally:
        await db.dispose()

    tables = table_names(db_path)
    assert set(Base.metadata.tables) <= tables
    assert tables - set(Base.metadata.tables) == {"alembic_version"}
    assert not [name for name in tables if name.startswith("_alembic_tmp_")]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_upgrade_creates_a_missing_file_and_its_directory(tmp_path: Path) -> None:
    db_path = tmp_path / "nested" / "dir" / "pixel.db"
    db = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == head_revision()
    finally:
        await db.dispose()
    assert set(Base.metadata.tables) <= table_names(db_path)


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_upgrade_is_idempotent(db_path: Path) -> None:
    db = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(db)
        before = table_names(db_path)
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == head_revision()
    finally:
        await db.dispose()

    # A second process (a restart) upgrading the same file is a no-op too.
    again = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(again)
        assert await migrate.current_revision(again) == head_revision()
    finally:
        await again.dispose()

    assert table_names(db_path) == before
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_upgrade_keeps_existing_rows(db_path: Path) -> None:
    db = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(db)
        async with db.write() as conn:
            await insert_user(conn, points=7)
        await migrate.upgrade(db)
        async with db.read() as conn:
            rows = (await conn.exec_driver_sql("SELECT id, points FROM users")).all()
        assert [tuple(row) for row in rows] == [(1, 7)]
    finally:
        await db.dispose()


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows}


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_0003_drops_the_unread_indexes_and_keeps_the_rows(db_path: Path) -> None:
    db = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(db, "0002")
        assert {"ix_cooldowns_expires_at", "ix_transactions_created_at"} <= index_names(db_path)
        async with db.write() as conn:
            user_id = await insert_user(conn, points=5)
            await insert_transaction(conn, user_id=user_id, amount=5, balance_after=5, ref="r1")
            await conn.exec_driver_sql(
                "INSERT INTO cooldowns (scope, key, expires_at) VALUES (?, 'earn:chat', ?)",
                (f"user:{user_id}", NOW),
            )
        await migrate.upgrade(db)
        assert not {"ix_cooldowns_expires_at", "ix_transactions_created_at"} & index_names(db_path)
        async with db.read() as conn:
            ledger = (await conn.exec_driver_sql("SELECT ref FROM transactions")).all()
            cooldowns = (await conn.exec_driver_sql("SELECT scope FROM cooldowns")).all()
            # the writer's cooldown load still finds its rows through (scope, key)
            plan = (
                await conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT expires_at FROM cooldowns "
                    "WHERE scope IN ('user:1', 'user:2') AND expires_at > ?",
                    (NOW,),
                )
            ).all()
        assert [tuple(row) for row in ledger] == [("r1",)]
        assert [tuple(row) for row in cooldowns] == [(f"user:{user_id}",)]
        assert any("sqlite_autoindex_cooldowns_1" in str(row) for row in plan), plan
    finally:
        await db.dispose()


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_0009_indexes_only_the_joined_wallets_and_keeps_the_rows(db_path: Path) -> None:
    db = Database(sqlite_url(db_path))
    try:
        await migrate.upgrade(db, "0008")
        async with db.write() as conn:
            target, joined, alone = [await insert_user(conn) for _ in range(3)]
            await conn.execute(update(USERS).where(USERS.c.id == joined).values(merged_into=target))
        await migrate.upgrade(db)
        with sqlite3.connect(db_path) as plain:
            (index,) = plain.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_users_merged_into'"
            ).fetchone()
        assert index.endswith("WHERE merged_into IS NOT NULL"), index
        async with db.read() as conn:
            wallets = (
                await conn.exec_driver_sql("SELECT id, merged_into FROM users ORDER BY id")
            ).all()
            # What looks wallets up by merged_into still goes through the index: the wallets
            # joined into one (queue), a link re-pointing earlier ones (store.MERGE_USERS), and
            # db verify's list of the joined ones.
            plans = [
                str(
                    (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", (target,) * n)).all()
                )
                for query, n in (
                    ("SELECT id FROM users WHERE merged_into = ?", 1),
                    ("UPDATE users SET merged_into = 9 WHERE id = ? OR merged_into = ?", 2),
                    ("SELECT id FROM users WHERE merged_into IS NOT NULL", 0),
                )
            ]
        assert [tuple(row) for row in wallets] == [(target, None), (joined, target), (alone, None)]
        for plan in plans:
            assert "ix_users_merged_into" in plan, plan
    finally:
        await db.dispose()


async def test_models_and_migrations_agree(migrated: Database) -> None:
    """alembic check: a model change without its migration fails here."""
    await migrate.check(migrated)


# ----------------------------------------------------------------------------- pragmas


async def pragma(conn: AsyncConnection, name: str) -> object:
    return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_sqlite_pragmas_on_engine_connections(db_path: Path) -> None:
    db = Database(sqlite_url(db_path), busy_timeout=timedelta(seconds=2.5))
    try:
        # After the migration ran on the pool (it switches foreign keys off while it works).
        await migrate.upgrade(db)
        for context in (db.read, db.write):
            async with context() as conn:
                assert await pragma(conn, "journal_mode") == "wal"
                assert await pragma(conn, "synchronous") == 1  # NORMAL
                assert await pragma(conn, "foreign_keys") == 1
                assert await pragma(conn, "busy_timeout") == 2500
    finally:
        await db.dispose()


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_busy_timeout_default_is_five_seconds(migrated: Database) -> None:
    async with migrated.read() as conn:
        assert await pragma(conn, "busy_timeout") == 5000


@pytest.mark.sqlite_only("the test inspects the SQLite file itself")
async def test_wal_mode_is_persistent_in_the_file(migrated: Database, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_foreign_keys_are_enforced_after_upgrade(migrated: Database) -> None:
    with pytest.raises(IntegrityError, match=FOREIGN_KEY):
        async with migrated.write() as conn:
            await insert_transaction(conn, user_id=999, amount=5, balance_after=5, ref="orphan")


# ----------------------------------------------------------------------------- DB guards


async def insert_user(conn: AsyncConnection, points: int = 0, xp: int = 0) -> int:
    values = {"display_name": "alice", "points": points, "xp": xp, "level": 1}
    now = {"rewarded_level": 1, "created_at": AWARE_NOW, "updated_at": AWARE_NOW}
    result = await conn.execute(insert(USERS).values(**values, **now).returning(USERS.c.id))
    return int(result.scalar_one())


async def insert_transaction(
    conn: AsyncConnection,
    *,
    user_id: int,
    amount: int,
    balance_after: int,
    ref: str,
    refund_of: str | None = None,
) -> None:
    await conn.execute(
        insert(TRANSACTIONS).values(
            user_id=user_id,
            amount=amount,
            balance_after=balance_after,
            kind="spend",
            reason="test",
            ref=ref,
            refund_of=refund_of,
            created_at=AWARE_NOW,
        )
    )


async def count(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())


async def test_negative_points_are_refused_by_the_database(migrated: Database) -> None:
    with pytest.raises(IntegrityError, match="ck_users_points_not_negative"):
        async with migrated.write() as conn:
            await insert_user(conn, points=-1)
    assert await count(migrated, "users") == 0


async def test_negative_points_are_refused_on_update_too(migrated: Database) -> None:
    async with migrated.write() as conn:
        user_id = await insert_user(conn, points=3)
    with pytest.raises(IntegrityError, match="ck_users_points_not_negative"):
        async with migrated.write() as conn:
            await conn.execute(
                update(USERS).where(USERS.c.id == user_id).values(points=USERS.c.points - 4)
            )
    async with migrated.read() as conn:
        assert (await conn.exec_driver_sql("SELECT points FROM users")).scalar_one() == 3


async def test_negative_xp_and_negative_ledger_balances_are_refused(migrated: Database) -> None:
    with pytest.raises(IntegrityError, match="ck_users_xp_not_negative"):
        async with migrated.write() as conn:
            await insert_user(conn, xp=-1)
    async with migrated.write() as conn:
        user_id = await insert_user(conn)
    with pytest.raises(IntegrityError, match="ck_transactions_balance_after_not_negative"):
        async with migrated.write() as conn:
            await insert_transaction(conn, user_id=user_id, amount=-1, balance_after=-1, ref="r")


async def test_a_transaction_ref_is_unique(migrated: Database) -> None:
    async with migrated.write() as conn:
        user_id = await insert_user(conn, points=10)
        await insert_transaction(conn, user_id=user_id, amount=10, balance_after=10, ref="evt-1")
    with pytest.raises(IntegrityError, match=UNIQUE.format("transactions", "ref")):
        async with migrated.write() as conn:
            await insert_transaction(
                conn, user_id=user_id, amount=10, balance_after=20, ref="evt-1"
            )
    assert await count(migrated, "transactions") == 1


async def test_a_charge_can_be_refunded_only_once(migrated: Database) -> None:
    async with migrated.write() as conn:
        user_id = await insert_user(conn, points=10)
        await insert_transaction(conn, user_id=user_id, amount=10, balance_after=10, ref="grant")
        await insert_transaction(conn, user_id=user_id, amount=-4, balance_after=6, ref="charge")
        await insert_transaction(
            conn, user_id=user_id, amount=4, balance_after=10, ref="refund-1", refund_of="charge"
        )
    with pytest.raises(IntegrityError, match=UNIQUE.format("transactions", "refund_of")):
        async with migrated.write() as conn:
            await insert_transaction(
                conn,
                user_id=user_id,
                amount=4,
                balance_after=14,
                ref="refund-2",
                refund_of="charge",
            )
    assert await count(migrated, "transactions") == 3


async def test_a_refund_must_name_an_existing_charge(migrated: Database) -> None:
    async with migrated.write() as conn:
        user_id = await insert_user(conn)
    with pytest.raises(IntegrityError, match=FOREIGN_KEY):
        async with migrated.write() as conn:
            await insert_transaction(
                conn, user_id=user_id, amount=4, balance_after=4, ref="r", refund_of="no-such"
            )


async def test_queue_item_status_is_checked(migrated: Database) -> None:
    with pytest.raises(IntegrityError, match="ck_queue_items_status"):
        async with migrated.write() as conn:
            await conn.execute(
                insert(Base.metadata.tables["queue_items"]).values(
                    kind="redeem",
                    status="exploded",
                    priority=0,
                    payload={},
                    cost=0,
                    attempts=0,
                    created_at=AWARE_NOW,
                )
            )
