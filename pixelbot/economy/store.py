"""Loading a ``Batch`` from the database and writing its staged rows back, set-based.

A batch of N operations costs a handful of statements, not N of each: identities, wallets, refs
and cooldowns are fetched with ``IN (...)`` queries, and staged rows are written with one
executemany per table. This is where the throughput of the economy comes from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.batch import GLOBAL_SCOPE, Account, Batch, Charge, Needs, user_scope

__all__ = ["flush", "load"]

USERS: Table = Base.metadata.tables["users"]
IDENTITIES: Table = Base.metadata.tables["identities"]
TRANSACTIONS: Table = Base.metadata.tables["transactions"]
XP_TRANSACTIONS: Table = Base.metadata.tables["xp_transactions"]
COOLDOWNS: Table = Base.metadata.tables["cooldowns"]
EVENTS: Table = Base.metadata.tables["events"]
QUEUE_ITEMS: Table = Base.metadata.tables["queue_items"]

CHUNK = 5000  # stays under SQLite's and asyncpg's bound-parameter limits

T = TypeVar("T")


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def load(conn: AsyncConnection, needs: Needs, batch: Batch) -> None:
    user_ids = set(needs.user_ids)
    if needs.charges:
        user_ids.update(await _load_charges(conn, needs.charges, batch))
    new_user_ids = await _resolve_identities(conn, needs, batch)
    user_ids.update(batch.user_ids_by_identity.values())
    await _load_accounts(conn, user_ids, batch)
    await _load_refs(conn, TRANSACTIONS.c.ref, needs.tx_refs, batch.tx_refs)
    await _load_refs(conn, XP_TRANSACTIONS.c.ref, needs.tx_refs, batch.xp_refs)
    batch.checked_tx_refs = set(needs.tx_refs)
    await _load_refs(conn, EVENTS.c.ref, needs.event_refs, batch.event_refs)
    batch.checked_event_refs = set(needs.event_refs)
    await _load_cooldowns(conn, user_ids, needs.global_cooldowns, batch)
    starting = batch.policy.starting_points
    if starting > 0:
        for user_id in new_user_ids:
            batch.credit(batch.accounts[user_id], starting, reason="welcome", ref=f"welcome:{user_id}")


async def _load_charges(conn: AsyncConnection, refs: set[str], batch: Batch) -> set[int]:
    refunded: set[str] = set()
    rows: list[Any] = []
    for chunk in _chunks(refs):
        rows += (
            await conn.execute(
                select(TRANSACTIONS.c.ref, TRANSACTIONS.c.user_id, TRANSACTIONS.c.amount).where(
                    TRANSACTIONS.c.ref.in_(chunk)
                )
            )
        ).all()
        refunded.update(
            (
                await conn.execute(
                    select(TRANSACTIONS.c.refund_of).where(TRANSACTIONS.c.refund_of.in_(chunk))
                )
            ).scalars()
        )
    for ref, user_id, amount in rows:
        batch.charges[ref] = Charge(ref, user_id, amount, ref in refunded)
    return {row.user_id for row in rows}


async def _resolve_identities(conn: AsyncConnection, needs: Needs, batch: Batch) -> list[int]:
    """Map each viewer to its wallet, creating wallets for first-timers. Renames are applied."""
    by_platform: dict[str, list[str]] = defaultdict(list)
    for platform, platform_user_id in needs.viewers:
        by_platform[platform].append(platform_user_id)
    renamed: list[dict[str, Any]] = []
    for platform, ids in by_platform.items():
        for chunk in _chunks(ids):
            result = await conn.execute(
                select(
                    IDENTITIES.c.platform_user_id,
                    IDENTITIES.c.user_id,
                    IDENTITIES.c.login,
                    IDENTITIES.c.display_name,
                ).where(IDENTITIES.c.platform == platform, IDENTITIES.c.platform_user_id.in_(chunk))
            )
            for platform_user_id, user_id, login, display_name in result:
                batch.user_ids_by_identity[(platform, platform_user_id)] = user_id
                seen = needs.viewers[(platform, platform_user_id)]
                if (seen.login, seen.display_name) != (login, display_name):
                    renamed.append(
                        {
                            "b_platform": platform,
                            "b_platform_user_id": platform_user_id,
                            "b_user_id": user_id,
                            "login": seen.login,
                            "display_name": seen.display_name,
                            "updated_at": batch.now,
                        }
                    )
    if renamed:
        await _apply_renames(conn, renamed)
    missing = [v for key, v in needs.viewers.items() if key not in batch.user_ids_by_identity]
    if not missing:
        return []
    start_level = batch.policy.curve.start_level
    new_ids = (
        await conn.execute(
            insert(USERS).returning(USERS.c.id, sort_by_parameter_order=True),
            [
                {
                    "display_name": viewer.display_name,
                    "points": 0,
                    "xp": 0,
                    "level": start_level,
                    "rewarded_level": start_level,
                    "created_at": batch.now,
                    "updated_at": batch.now,
                }
                for viewer in missing
            ],
        )
    ).scalars()
    identity_rows = []
    created: list[int] = []
    for viewer, user_id in zip(missing, new_ids, strict=True):
        batch.user_ids_by_identity[viewer.key] = user_id
        created.append(user_id)
        identity_rows.append(
            {
                "user_id": user_id,
                "platform": viewer.platform,
                "platform_user_id": viewer.platform_user_id,
                "login": viewer.login,
                "display_name": viewer.display_name,
                "created_at": batch.now,
                "updated_at": batch.now,
            }
        )
    await conn.execute(insert(IDENTITIES), identity_rows)
    return created


async def _apply_renames(conn: AsyncConnection, renamed: list[dict[str, Any]]) -> None:
    await conn.execute(
        update(IDENTITIES)
        .where(
            IDENTITIES.c.platform == bindparam("b_platform"),
            IDENTITIES.c.platform_user_id == bindparam("b_platform_user_id"),
        )
        .values(
            login=bindparam("login"),
            display_name=bindparam("display_name"),
            updated_at=bindparam("updated_at"),
        ),
        renamed,
    )
    await conn.execute(
        update(USERS)
        .where(USERS.c.id == bindparam("b_user_id"))
        .values(display_name=bindparam("display_name")),
        [{"b_user_id": r["b_user_id"], "display_name": r["display_name"]} for r in renamed],
    )


async def _load_accounts(conn: AsyncConnection, user_ids: set[int], batch: Batch) -> None:
    columns = (
        USERS.c.id,
        USERS.c.display_name,
        USERS.c.points,
        USERS.c.xp,
        USERS.c.level,
        USERS.c.rewarded_level,
    )
    for chunk in _chunks(user_ids):
        # FOR UPDATE locks the wallets on PostgreSQL; SQLite already holds the write lock.
        result = await conn.execute(select(*columns).where(USERS.c.id.in_(chunk)).with_for_update())
        for row in result:
            batch.accounts[row.id] = Account(
                row.id, row.display_name, row.points, row.xp, row.level, row.rewarded_level
            )


async def _load_refs(
    conn: AsyncConnection, column: Any, refs: set[str], found: set[str]
) -> None:
    for chunk in _chunks(refs):
        found.update((await conn.execute(select(column).where(column.in_(chunk)))).scalars())


async def _load_cooldowns(
    conn: AsyncConnection, user_ids: set[int], global_keys: set[str], batch: Batch
) -> None:
    scopes = [user_scope(user_id) for user_id in user_ids]
    conditions = [COOLDOWNS.c.scope.in_(chunk) for chunk in _chunks(scopes)]
    if global_keys:
        conditions.append(
            (COOLDOWNS.c.scope == GLOBAL_SCOPE) & COOLDOWNS.c.key.in_(sorted(global_keys))
        )
    if not conditions:
        return
    result = await conn.execute(
        select(COOLDOWNS.c.scope, COOLDOWNS.c.key, COOLDOWNS.c.expires_at).where(
            or_(*conditions), COOLDOWNS.c.expires_at > batch.now
        )
    )
    for scope, key, expires_at in result:
        batch.cooldowns[(scope, key)] = expires_at


async def flush(conn: AsyncConnection, batch: Batch, db: Database) -> None:
    await _insert(conn, TRANSACTIONS, batch.transactions)
    await _insert(conn, XP_TRANSACTIONS, batch.xp_transactions)
    await _insert(conn, EVENTS, batch.events)
    await _insert(conn, QUEUE_ITEMS, batch.queue_items)
    if batch.cooldown_rows:
        await conn.execute(
            db.upsert(COOLDOWNS, ["scope", "key"], ["expires_at"]),
            [
                {"scope": scope, "key": key, "expires_at": expires}
                for (scope, key), expires in batch.cooldown_rows.items()
            ],
        )
    accounts = [
        {
            "b_id": a.user_id,
            "points": a.points,
            "xp": a.xp,
            "level": a.level,
            "rewarded_level": a.rewarded_level,
            "updated_at": batch.now,
        }
        for a in batch.dirty_accounts()
    ]
    if accounts:
        await conn.execute(
            update(USERS)
            .where(USERS.c.id == bindparam("b_id"))
            .values(
                points=bindparam("points"),
                xp=bindparam("xp"),
                level=bindparam("level"),
                rewarded_level=bindparam("rewarded_level"),
                updated_at=bindparam("updated_at"),
            ),
            accounts,
        )


async def _insert(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(table), list(rows))
