"""Loading a ``Batch`` from the database and writing its staged rows back, set-based.

A batch of N operations costs a handful of statements, not N of each: identities, wallets, refs
and cooldowns are fetched with ``IN (...)`` queries, and staged rows are written with one
executemany per table. This is where the throughput of the economy comes from.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection

from pixelbot.db.bulk import write_rows
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.economy.batch import (
    GLOBAL_SCOPE,
    GRANT,
    Account,
    Batch,
    Charge,
    IdentityRow,
    LinkCodeRow,
    Needs,
    OpenItem,
    user_scope,
)
from pixelbot.economy.cache import WriterCache
from pixelbot.events import Viewer

__all__ = ["flush", "load"]

USERS: Table = Base.metadata.tables["users"]
IDENTITIES: Table = Base.metadata.tables["identities"]
TRANSACTIONS: Table = Base.metadata.tables["transactions"]
XP_TRANSACTIONS: Table = Base.metadata.tables["xp_transactions"]
COOLDOWNS: Table = Base.metadata.tables["cooldowns"]
EVENTS: Table = Base.metadata.tables["events"]
QUEUE_ITEMS: Table = Base.metadata.tables["queue_items"]
LINK_CODES: Table = Base.metadata.tables["link_codes"]

# Queue items that count against redeem limits: refunded ones (failed, cancelled) do not.
LIVE_STATUSES = ("pending", "running", "done")

INSERT_USERS = insert(USERS)
INSERT_IDENTITIES = insert(IDENTITIES)
INSERT_TRANSACTIONS = insert(TRANSACTIONS)
INSERT_XP_TRANSACTIONS = insert(XP_TRANSACTIONS)
INSERT_EVENTS = insert(EVENTS)
INSERT_QUEUE_ITEMS = insert(QUEUE_ITEMS)
INSERT_LINK_CODES = insert(LINK_CODES)
# A code is used once: a second use of the same code (another process) changes nothing.
USE_LINK_CODES = (
    update(LINK_CODES)
    .where(LINK_CODES.c.id == bindparam("b_id"), LINK_CODES.c.used_at.is_(None))
    .values(used_at=bindparam("used_at"), used_by=bindparam("used_by"))
)
# A new code ends the identity's earlier ones: one live code per identity at a time.
EXPIRE_LINK_CODES = (
    update(LINK_CODES)
    .where(
        LINK_CODES.c.platform == bindparam("b_platform"),
        LINK_CODES.c.platform_user_id == bindparam("b_platform_user_id"),
        LINK_CODES.c.used_at.is_(None),
        LINK_CODES.c.expires_at > bindparam("b_now"),
    )
    .values(expires_at=bindparam("expires_at"))
)
MOVE_IDENTITIES = (
    update(IDENTITIES)
    .where(
        IDENTITIES.c.platform == bindparam("b_platform"),
        IDENTITIES.c.platform_user_id == bindparam("b_platform_user_id"),
    )
    .values(user_id=bindparam("user_id"), updated_at=bindparam("updated_at"))
)
# A joined wallet, and any wallet joined into it earlier, now name the final one.
MERGE_USERS = (
    update(USERS)
    .where(or_(USERS.c.id == bindparam("b_id"), USERS.c.merged_into == bindparam("b_id")))
    .values(merged_into=bindparam("merged_into"))
)
# Only an open item can be settled: a second settle of the same item changes nothing.
SETTLE_QUEUE_ITEMS = (
    update(QUEUE_ITEMS)
    # (a literal condition: the bulk path binds only the per-row parameters)
    .where(QUEUE_ITEMS.c.id == bindparam("b_id"), text("status IN ('pending', 'running')"))
    .values(
        status=bindparam("status"),
        error=bindparam("error"),
        result=bindparam("result"),
        finished_at=bindparam("finished_at"),
    )
)
UPDATE_ACCOUNTS = (
    update(USERS)
    .where(USERS.c.id == bindparam("b_id"))
    .values(
        points=bindparam("points"),
        xp=bindparam("xp"),
        level=bindparam("level"),
        rewarded_level=bindparam("rewarded_level"),
        updated_at=bindparam("updated_at"),
    )
)


def load(
    conn: Connection, needs: Needs, batch: Batch, db: Database, cache: WriterCache | None
) -> None:
    """Fill ``batch`` with what ``needs`` names. ``cache``: what the writer remembers from its
    earlier commits (None: load everything); only what it lacks is read."""
    # Rows that may not exist yet cannot be locked: another process sharing the database
    # (PostgreSQL) must wait here for a global cooldown or a redeem's counts we are deciding on.
    db.lock_names(
        conn,
        [f"cooldown:{key}" for key in needs.global_cooldowns]
        + [f"redeem:{key}" for key in needs.redeem_counts]
        + [f"queue:{kind}" for kind in needs.pending_kinds],
    )
    user_ids = set(needs.user_ids)
    if needs.settle_items:
        user_ids.update(_load_open_items(conn, needs, batch, db))
    if needs.charges:
        user_ids.update(_load_charges(conn, needs.charges, batch, db))
    if needs.link_codes:
        user_ids.update(_load_link_codes(conn, needs.link_codes, batch, db))
    new_user_ids = _resolve_identities(conn, needs, batch, db, cache)
    user_ids.update(batch.user_ids_by_identity.values())
    _load_accounts(conn, user_ids, batch, db, cache)
    user_ids = set(batch.accounts)  # with the wallets merged ones resolved to
    if needs.identity_lists:
        _load_identity_lists(conn, batch, db)
    batch.new_user_ids = db.reserve_ids(conn, USERS, needs.new_users)
    _load_refs(conn, db, TRANSACTIONS.c.ref, needs.tx_refs, batch.tx_refs)
    _load_refs(conn, db, XP_TRANSACTIONS.c.ref, needs.tx_refs, batch.xp_refs)
    batch.checked_tx_refs = set(needs.tx_refs)
    _load_refs(conn, db, EVENTS.c.ref, needs.event_refs, batch.event_refs)
    batch.checked_event_refs = set(needs.event_refs)
    _load_cooldowns(conn, user_ids, needs.global_cooldowns, batch, db, cache)
    if needs.redeem_counts:
        _load_redeem_counts(conn, needs.redeem_counts, batch, db)
    if needs.pending_kinds:
        _load_pending_counts(conn, needs.pending_kinds, batch)
    batch.queue_ids = db.reserve_ids(conn, QUEUE_ITEMS, needs.queue_items, dense=True)
    starting = batch.policy.starting_points
    if starting > 0:
        for user_id in new_user_ids:
            batch.credit(
                batch.accounts[user_id],
                starting,
                kind=GRANT,
                reason="welcome",
                ref=f"welcome:{user_id}",
            )


def _load_open_items(conn: Connection, needs: Needs, batch: Batch, db: Database) -> set[int]:
    """Queue items to settle that are still open, and (declared as charges) what they cost."""
    result = conn.execute(
        select(
            QUEUE_ITEMS.c.id,
            QUEUE_ITEMS.c.kind,
            QUEUE_ITEMS.c.status,
            QUEUE_ITEMS.c.user_id,
            QUEUE_ITEMS.c.charge_ref,
            QUEUE_ITEMS.c.payload,
            QUEUE_ITEMS.c.lease_owner,
            QUEUE_ITEMS.c.lease_expires_at,
        )
        .where(
            db.member_of(QUEUE_ITEMS.c.id, needs.settle_items),
            QUEUE_ITEMS.c.status.in_(("pending", "running")),
        )
        .order_by(QUEUE_ITEMS.c.id)
        # Locked until the batch commits: another process settling the same item waits, then
        # no longer finds it open (PostgreSQL re-checks the status), so it is refunded once.
        .with_for_update()
    )
    users: set[int] = set()
    for row in result:
        batch.open_items[row.id] = OpenItem(*row)
        if row.charge_ref is not None:
            needs.charges.add(row.charge_ref)
        if row.user_id is not None:
            users.add(row.user_id)
    return users


def _load_charges(conn: Connection, refs: set[str], batch: Batch, db: Database) -> set[int]:
    rows = (
        conn.execute(
            select(
                TRANSACTIONS.c.ref,
                TRANSACTIONS.c.user_id,
                TRANSACTIONS.c.amount,
                TRANSACTIONS.c.kind,
            ).where(db.member_of(TRANSACTIONS.c.ref, refs))
        )
    ).all()
    refunded = set(
        (
            conn.execute(
                select(TRANSACTIONS.c.refund_of).where(db.member_of(TRANSACTIONS.c.refund_of, refs))
            )
        ).scalars()
    )
    for ref, user_id, amount, kind in rows:
        batch.charges[ref] = Charge(ref, user_id, amount, ref in refunded, kind)
    return {row.user_id for row in rows}


def _resolve_identities(
    conn: Connection, needs: Needs, batch: Batch, db: Database, cache: WriterCache | None
) -> list[int]:
    """Map each viewer to its wallet, creating wallets for first-timers. Renames are applied."""
    by_platform: dict[str, list[str]] = defaultdict(list)
    renamed: list[dict[str, Any]] = []
    for key, seen in needs.viewers.items():
        known = cache.identities.get(key) if cache is not None else None
        if known is None:
            by_platform[key[0]].append(key[1])
            continue
        user_id, login, display_name = known
        batch.user_ids_by_identity[key] = user_id
        if (seen.login, seen.display_name) != (login, display_name):
            renamed.append(_rename(seen, user_id, batch.now))
    for platform, ids in by_platform.items():
        result = conn.execute(
            select(
                IDENTITIES.c.platform_user_id,
                IDENTITIES.c.user_id,
                IDENTITIES.c.login,
                IDENTITIES.c.display_name,
            ).where(
                IDENTITIES.c.platform == platform,
                db.member_of(IDENTITIES.c.platform_user_id, ids),
            )
        )
        for platform_user_id, user_id, login, display_name in result:
            batch.user_ids_by_identity[(platform, platform_user_id)] = user_id
            seen = needs.viewers[(platform, platform_user_id)]
            if (seen.login, seen.display_name) != (login, display_name):
                renamed.append(_rename(seen, user_id, batch.now))
    if renamed:
        _apply_renames(conn, renamed)
        if cache is not None:  # the wallet's display name changes with the identity's
            for row in renamed:
                cache.forget_account(row["b_user_id"])
    missing = [v for key, v in needs.viewers.items() if key not in batch.user_ids_by_identity]
    if not missing:
        return []
    start_level = batch.policy.curve.start_level
    new_ids = db.reserve_ids(conn, USERS, len(missing))
    user_rows = []
    identity_rows = []
    for viewer, user_id in zip(missing, new_ids, strict=True):
        batch.user_ids_by_identity[viewer.key] = user_id
        user_rows.append(
            {
                "id": user_id,
                "display_name": viewer.display_name,
                "points": 0,
                "xp": 0,
                "level": start_level,
                "rewarded_level": start_level,
                "created_at": batch.now,
                "updated_at": batch.now,
            }
        )
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
    write_rows(db, conn, INSERT_USERS, user_rows)
    write_rows(db, conn, INSERT_IDENTITIES, identity_rows)
    return new_ids


def _rename(seen: Viewer, user_id: int, now: datetime) -> dict[str, Any]:
    return {
        "b_platform": seen.platform,
        "b_platform_user_id": seen.platform_user_id,
        "b_user_id": user_id,
        "login": seen.login,
        "display_name": seen.display_name,
        "updated_at": now,
    }


def _apply_renames(conn: Connection, renamed: list[dict[str, Any]]) -> None:
    conn.execute(
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
    conn.execute(
        update(USERS)
        .where(USERS.c.id == bindparam("b_user_id"))
        .values(display_name=bindparam("display_name")),
        [{"b_user_id": r["b_user_id"], "display_name": r["display_name"]} for r in renamed],
    )


def _load_accounts(
    conn: Connection, user_ids: set[int], batch: Batch, db: Database, cache: WriterCache | None
) -> None:
    if cache is not None:
        missing = set()
        for user_id in user_ids:
            account = cache.account(user_id)
            if account is None:
                missing.add(user_id)
            else:
                batch.accounts[user_id] = account
        user_ids = missing
    if not user_ids:
        return
    columns = (
        USERS.c.id,
        USERS.c.display_name,
        USERS.c.points,
        USERS.c.xp,
        USERS.c.level,
        USERS.c.rewarded_level,
    )
    # FOR UPDATE locks the wallets on PostgreSQL; SQLite already holds the write lock.
    result = conn.execute(
        select(*columns, USERS.c.merged_into)
        .where(db.member_of(USERS.c.id, user_ids))
        .order_by(USERS.c.id)  # one locking order: two processes' batches cannot deadlock
        .with_for_update()
    )
    merged: dict[int, int] = {}
    for row in result:
        if row.merged_into is None:
            batch.accounts[row[0]] = Account(*row[:6])
        else:
            merged[row[0]] = row.merged_into
    if merged:
        # A wallet joined into another by !link: whatever still names it (a refund of an old
        # charge, a queue item's prize) lands on the wallet it joined. Its row stays unchanged.
        roots = set(merged.values()) - batch.accounts.keys()
        if roots:
            _load_accounts(conn, roots, batch, db, cache)
        for user_id, root in merged.items():
            batch.accounts[user_id] = batch.accounts[root]


def _load_link_codes(conn: Connection, hashes: set[str], batch: Batch, db: Database) -> set[int]:
    result = conn.execute(
        select(
            LINK_CODES.c.code_hash,
            LINK_CODES.c.id,
            LINK_CODES.c.user_id,
            LINK_CODES.c.platform,
            LINK_CODES.c.platform_user_id,
            LINK_CODES.c.expires_at,
            LINK_CODES.c.used_at,
        )
        .where(db.member_of(LINK_CODES.c.code_hash, hashes))
        .with_for_update()
    )
    users: set[int] = set()
    for code_hash, *fields in result:
        code = LinkCodeRow(*fields)
        batch.link_codes[code_hash] = code
        users.add(code.user_id)
    return users


def _load_identity_lists(conn: Connection, batch: Batch, db: Database) -> None:
    """Every identity of every wallet in the batch (wallets are few when someone links)."""
    roots = {account.user_id for account in batch.accounts.values()}
    found: dict[int, list[IdentityRow]] = {user_id: [] for user_id in roots}
    result = conn.execute(
        select(
            IDENTITIES.c.user_id,
            IDENTITIES.c.platform,
            IDENTITIES.c.platform_user_id,
            IDENTITIES.c.login,
            IDENTITIES.c.display_name,
        )
        .where(db.member_of(IDENTITIES.c.user_id, roots))
        .order_by(IDENTITIES.c.id)
    )
    for user_id, *fields in result:
        found[user_id].append(IdentityRow(*fields))
    batch.identities_of = {user_id: tuple(rows) for user_id, rows in found.items()}


def _load_refs(
    conn: Connection, db: Database, column: Any, refs: set[str], found: set[str]
) -> None:
    if refs:
        query = select(column).where(db.member_of(column, refs))
        found.update((conn.execute(query)).scalars())


def _load_cooldowns(
    conn: Connection,
    user_ids: set[int],
    global_keys: set[str],
    batch: Batch,
    db: Database,
    cache: WriterCache | None,
) -> None:
    scopes = [user_scope(user_id) for user_id in user_ids]
    if cache is not None:
        scopes, global_keys = _cached_cooldowns(cache, scopes, global_keys, batch)
    conditions = []
    if scopes:
        conditions.append(db.member_of(COOLDOWNS.c.scope, scopes))
    if global_keys:
        conditions.append(
            (COOLDOWNS.c.scope == GLOBAL_SCOPE) & db.member_of(COOLDOWNS.c.key, global_keys)
        )
    if not conditions:
        return
    result = conn.execute(
        select(COOLDOWNS.c.scope, COOLDOWNS.c.key, COOLDOWNS.c.expires_at).where(
            or_(*conditions), COOLDOWNS.c.expires_at > batch.now
        )
    )
    for scope, key, expires_at in result:
        batch.cooldowns[(scope, key)] = expires_at


def _cached_cooldowns(
    cache: WriterCache, scopes: list[str], global_keys: set[str], batch: Batch
) -> tuple[list[str], set[str]]:
    """Put the cached cooldowns into ``batch``; returns the scopes and global keys to query."""
    now = batch.now
    missing_scopes = []
    for scope in scopes:
        known = cache.scopes.get(scope)
        if known is None:
            missing_scopes.append(scope)
            continue
        for key, expires in known.items():
            if expires > now:
                batch.cooldowns[(scope, key)] = expires
    missing_keys: set[str] = set()
    for key in global_keys:
        cached = cache.global_cooldowns.get(key)
        if cached is None:
            missing_keys.add(key)
        elif cached > now:
            batch.cooldowns[(GLOBAL_SCOPE, key)] = cached
    return missing_scopes, missing_keys


def _load_pending_counts(conn: Connection, kinds: set[str], batch: Batch) -> None:
    """How many items of each kind wait in the queue (a full queue refuses new redeems)."""
    rows = conn.execute(
        select(QUEUE_ITEMS.c.kind, func.count())
        .where(QUEUE_ITEMS.c.kind.in_(sorted(kinds)), QUEUE_ITEMS.c.status == "pending")
        .group_by(QUEUE_ITEMS.c.kind)
    )
    batch.pending_counts = {kind: 0 for kind in kinds}
    batch.pending_counts.update({kind: count for kind, count in rows})


def _load_redeem_counts(
    conn: Connection,
    windows: dict[str, tuple[int | None, datetime]],
    batch: Batch,
    db: Database,
) -> None:
    """Live (not cancelled or failed) queue items per redeem and viewer in each window: the
    live stream session, or, offline, items bought offline since the last stream ended."""
    by_window: dict[tuple[int | None, datetime], list[str]] = defaultdict(list)
    for key, window in windows.items():
        by_window[window].append(key)
    for (session_id, since), keys in by_window.items():
        in_window = (
            QUEUE_ITEMS.c.stream_session_id == session_id
            if session_id is not None
            else QUEUE_ITEMS.c.stream_session_id.is_(None) & (QUEUE_ITEMS.c.created_at >= since)
        )
        # Per person, not per identity: items bought by a wallet that was joined into another
        # by !link count for the wallet it joined.
        person = func.coalesce(USERS.c.merged_into, QUEUE_ITEMS.c.user_id)
        result = conn.execute(
            select(QUEUE_ITEMS.c.redeem_key, person, func.count())
            .select_from(QUEUE_ITEMS)
            .outerjoin(USERS, USERS.c.id == QUEUE_ITEMS.c.user_id)
            .where(
                db.member_of(QUEUE_ITEMS.c.redeem_key, keys),
                QUEUE_ITEMS.c.status.in_(LIVE_STATUSES),
                in_window,
            )
            .group_by(QUEUE_ITEMS.c.redeem_key, person)
        )
        for key, user_id, count in result:
            batch.redeem_counts[(key, user_id)] = count
            total = batch.redeem_counts.get((key, None), 0)
            batch.redeem_counts[(key, None)] = total + count


def flush(conn: Connection, batch: Batch, db: Database) -> None:
    write_rows(db, conn, INSERT_USERS, batch.new_users)  # before rows that name them
    if batch.new_link_codes:
        write_rows(
            db,
            conn,
            EXPIRE_LINK_CODES,
            [
                {
                    "b_platform": row["platform"],
                    "b_platform_user_id": row["platform_user_id"],
                    "b_now": batch.now,
                    "expires_at": batch.now,
                }
                for row in batch.new_link_codes
            ],
        )
    write_rows(db, conn, INSERT_LINK_CODES, batch.new_link_codes)
    write_rows(db, conn, USE_LINK_CODES, batch.used_link_codes)
    write_rows(db, conn, MOVE_IDENTITIES, batch.identity_moves)
    write_rows(db, conn, MERGE_USERS, batch.user_merges)
    write_rows(db, conn, INSERT_TRANSACTIONS, batch.transactions)
    write_rows(db, conn, INSERT_XP_TRANSACTIONS, batch.xp_transactions)
    write_rows(db, conn, INSERT_EVENTS, batch.events)
    write_rows(db, conn, INSERT_QUEUE_ITEMS, batch.queue_items)
    write_rows(db, conn, SETTLE_QUEUE_ITEMS, batch.settled_items)
    if batch.cooldown_rows:
        write_rows(
            db,
            conn,
            _upsert_cooldowns(db),
            [
                {"scope": scope, "key": key, "expires_at": expires}
                for (scope, key), expires in batch.cooldown_rows.items()
            ],
        )
    accounts = [
        {
            "points": a.points,
            "xp": a.xp,
            "level": a.level,
            "rewarded_level": a.rewarded_level,
            "updated_at": batch.now,
            "b_id": a.user_id,
        }
        for a in batch.dirty_accounts()
    ]
    write_rows(db, conn, UPDATE_ACCOUNTS, accounts)


_upserts: dict[str, Any] = {}


def _upsert_cooldowns(db: Database) -> Any:
    """One upsert statement per backend, kept so bulk plans can be cached by identity."""
    name = db.url.get_backend_name()
    if name not in _upserts:
        _upserts[name] = db.upsert(COOLDOWNS, ["scope", "key"], ["expires_at"])
    return _upserts[name]
