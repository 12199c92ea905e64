"""Watch-time payouts: one transaction pays every viewer present for one tick.

A tick is the ``n``-th interval of a live stream session. The whole tick is one transaction:
every award is a ledger row with the ref ``payout:<session>:<tick>:<who>``, and one ``payout``
event row (ref ``payout:<session>:<tick>``) records the tick itself. A job that runs again for
the same tick (a restart, a retry) finds that row and pays nobody twice. New viewers get their
wallet (and welcome points) in the same transaction.

Set-based: a tick of 100,000 viewers through the writer's ``Batch`` spent most of its time in
per-row bookkeeping (undo steps, ref sets) that a payout does not need, since it is
all-or-nothing. It is a ``SetBasedOperation`` instead: the writer runs it alone, in its turn
(chat queues behind it as behind any batch, never fighting it for the write lock), in a write
transaction of its own, and forgets its cached wallets afterwards. The rows are made inside the
database, SQLite or PostgreSQL, from the tick's working table (``payouts_sql.py``, where the two
dialects' differences are listed), and only the viewers who level up go through ``_Rows``, the
writer's rules worked out in Python (the balance cap, level-ups and their rewards, welcome
points). ``_pay_rows`` works the whole tick out row by row with ``_Rows`` instead: for a SQLite
older than 3.33, and as the reference the tests compare the set-based way with
(``rows_in_python``). Renames seen in the presence list are left to the viewer's next chat
line.

Several bot processes may share a PostgreSQL database: there the wallets are locked as they are
read, a tick another process is paying is waited for (a lock on its ref) and then found paid,
and a tick that meets another process's change it cannot settle is rolled back
(``DatabaseConflict``) and run again by the writer (``payouts_sql.py`` says which).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db.bulk import execute_many, execute_tuples
from pixelbot.db.engine import Database
from pixelbot.economy.batch import EARN, GRANT, Account, LevelUp, Policy
from pixelbot.economy.payouts_sql import pay_in_sql, supported
from pixelbot.economy.store import (
    EVENTS,
    IDENTITIES,
    INSERT_EVENTS,
    INSERT_IDENTITIES,
    INSERT_TRANSACTIONS,
    INSERT_USERS,
    INSERT_XP_TRANSACTIONS,
    UPDATE_ACCOUNTS,
    USERS,
)
from pixelbot.economy.writer import SetBasedOperation, Writer
from pixelbot.errors import DatabaseConflict
from pixelbot.events import Viewer

__all__ = ["Award", "PaidTick", "Payouts"]


@dataclass(frozen=True)
class Award:
    viewer: Viewer
    points: int
    xp: int


@dataclass(frozen=True)
class PaidTick:
    session_id: int
    tick: int
    viewers: int = 0  # paid now
    points: int = 0
    xp: int = 0
    already_paid: bool = False  # the tick was paid before (nothing changed now)
    level_ups: tuple[LevelUp, ...] = field(default=())


class Payouts:
    def __init__(self, writer: Writer, *, rows_in_python: bool = False) -> None:
        """``rows_in_python``: work the rows out in Python, row by row (``_pay_rows``), instead
        of inside the database (the tests compare the two ways on the same ticks)."""
        self._writer = writer
        self._rows_in_python = rows_in_python

    async def pay_tick(self, session_id: int, tick: int, awards: list[Award]) -> PaidTick:
        """Pay one tick of one stream session (once, however often it is asked)."""
        policy = self._writer.policy
        return await self._writer.submit(
            _PayTick(policy, session_id, tick, tuple(awards), self._rows_in_python)
        )


@dataclass(frozen=True)
class _PayTick(SetBasedOperation[PaidTick]):
    """The writer runs it alone, in its turn, in a transaction of its own (on SQLite the
    writer's BEGIN IMMEDIATE holds the write lock; on PostgreSQL the wallets are locked as
    they are read, in id order as the writer's batches lock them), and runs it again if
    PostgreSQL rolls it back for another process (``DatabaseConflict``)."""

    policy: Policy
    session_id: int
    tick: int
    awards: tuple[Award, ...]
    rows_in_python: bool = False

    async def write(self, conn: AsyncConnection, db: Database, now: datetime) -> PaidTick:
        return await _pay_tick(
            conn,
            db,
            self.policy,
            now,
            self.session_id,
            self.tick,
            list(self.awards),
            rows_in_python=self.rows_in_python,
        )


async def _pay_tick(
    conn: AsyncConnection,
    db: Database,
    policy: Policy,
    now: datetime,
    session_id: int,
    tick: int,
    awards: list[Award],
    *,
    rows_in_python: bool = False,
) -> PaidTick:
    tick_ref = f"payout:{session_id}:{tick}"
    # Two bots paying the same tick of a shared PostgreSQL database: the second waits here
    # until the first commits, then finds the tick paid (on SQLite the write lock does it).
    await conn.run_sync(db.lock_names, [tick_ref])
    paid_before = await conn.execute(select(EVENTS.c.id).where(EVENTS.c.ref == tick_ref))
    if paid_before.first() is not None:
        return PaidTick(session_id, tick, already_paid=True)
    rows = _Rows(policy, now)
    if supported(db) and not rows_in_python:
        await pay_in_sql(conn, db, rows, tick_ref, _paying(awards))
        await execute_tuples(db, conn, INSERT_TRANSACTIONS, _LEDGER_KEYS, rows.rewards)
    else:
        wanted = {
            (v.platform, v.platform_user_id): award  # (as ``Viewer.key``, without a call each)
            for award in awards
            if award.points > 0 or award.xp > 0
            for v in (award.viewer,)
        }
        await _pay_rows(conn, db, rows, tick_ref, wanted)
    rows.events.append(
        _event(
            "payout",
            None,
            tick_ref,
            None,
            {
                "session": session_id,
                "tick": tick,
                "viewers": rows.viewers,
                "points": rows.points,
                "xp": rows.xp,
            },
            now,
        )
    )
    await execute_many(db, conn, INSERT_EVENTS, rows.events)
    return PaidTick(
        session_id,
        tick,
        rows.viewers,
        rows.points,
        rows.xp,
        level_ups=tuple(rows.level_ups),
    )


async def _pay_rows(
    conn: AsyncConnection,
    db: Database,
    rows: _Rows,
    tick_ref: str,
    wanted: dict[tuple[str, str], Award],
) -> None:
    """The tick worked out row by row in Python and written with one executemany per table
    (the reference way, and a SQLite older than 3.33; ``payouts_sql.py`` does it in SQL)."""
    user_ids, accounts, new_viewers = await _wallets(conn, db, wanted)
    shared = len(accounts) < len(user_ids)  # linked identities present on two platforms
    new_ids = await db.next_ids(conn, USERS, len(new_viewers))
    start = rows.policy.curve.start_level
    for viewer, user_id in zip(new_viewers, new_ids, strict=True):
        user_ids[viewer.key] = user_id
        account = accounts[user_id] = Account(user_id, viewer.display_name, 0, 0, start, start)
        rows.welcome(account)
    for key, award in _one_per_wallet(wanted, user_ids) if shared else wanted.items():
        ref = f"{tick_ref}:{key[0]}:{key[1]}"
        rows.pay(accounts[user_ids[key]], award.points, award.xp, ref)
    # New wallets are written once, as the tick leaves them (no insert-then-update), before
    # the rows that name them.
    new_accounts = [accounts[user_id] for user_id in new_ids]
    now = rows.now
    await execute_tuples(db, conn, INSERT_USERS, _USER_KEYS, rows.new_users(new_accounts))
    await execute_tuples(
        db, conn, INSERT_IDENTITIES, _IDENTITY_KEYS, _identities(new_viewers, new_ids, now)
    )
    await execute_tuples(db, conn, INSERT_TRANSACTIONS, _LEDGER_KEYS, rows.welcomes + rows.earned)
    await execute_tuples(db, conn, INSERT_TRANSACTIONS, _LEDGER_KEYS, rows.rewards)
    await execute_tuples(db, conn, INSERT_XP_TRANSACTIONS, _XP_KEYS, rows.xp_rows)
    known = [accounts[user_id] for user_id in sorted(set(accounts) - set(new_ids))]
    await execute_tuples(db, conn, UPDATE_ACCOUNTS, _ACCOUNT_KEYS, rows.accounts(known))


_USER_KEYS = (
    "id",
    "display_name",
    "points",
    "xp",
    "level",
    "rewarded_level",
    "created_at",
    "updated_at",
)
_IDENTITY_KEYS = (
    "user_id",
    "platform",
    "platform_user_id",
    "login",
    "display_name",
    "created_at",
    "updated_at",
)
_LEDGER_KEYS = (
    "user_id",
    "amount",
    "balance_after",
    "kind",
    "reason",
    "ref",
    "actor",
    "refund_of",
    "created_at",
)
_XP_KEYS = ("user_id", "amount", "xp_after", "level_after", "reason", "ref", "created_at")
_ACCOUNT_KEYS = ("points", "xp", "level", "rewarded_level", "updated_at", "b_id")

Row = tuple[Any, ...]


def _paying(awards: list[Award]) -> Iterable[Award]:
    """The awards that pay anything, in pay order; a viewer listed twice is paid once, at the
    place of their first award, with their last (as the dict ``_pay_rows`` is given keeps
    them). Keyed by text: a tuple a viewer, kept until the tick ends, set Python's garbage
    collector going (with its default thresholds, ~130 young collections in a tick of 100,000,
    and in some runs a full one of ~0.1 s); text is never tracked by it. Platform names hold
    no NUL."""
    paying: dict[str, Award] = {}
    for award in awards:
        if award.points > 0 or award.xp > 0:
            v = award.viewer
            paying[f"{v.platform}\0{v.platform_user_id}"] = award
    return paying.values()


def _one_per_wallet(
    wanted: dict[tuple[str, str], Award], user_ids: dict[tuple[str, str], int]
) -> list[tuple[tuple[str, str], Award]]:
    """Watching is paid per person: accounts linked into one wallet (``!link``) and present
    on several platforms at once are paid once a tick, the best of their awards (a subscriber
    on one platform keeps the multiplier)."""
    best: dict[int, tuple[tuple[str, str], Award]] = {}
    for key, award in wanted.items():
        user_id = user_ids[key]
        kept = best.get(user_id)
        if kept is None or (award.points, award.xp) > (kept[1].points, kept[1].xp):
            best[user_id] = (key, award)
    return list(best.values())


_STALE_RETRIES = 3  # readings of the present wallets while links change them (PostgreSQL)


async def _wallets(
    conn: AsyncConnection, db: Database, wanted: dict[tuple[str, str], Award]
) -> tuple[dict[tuple[str, str], int], dict[int, Account], list[Viewer]]:
    """The wallet id of each viewer who has one, those wallets (locked on PostgreSQL, in id
    order as the writer's batches lock them), and the viewers seen for the first time (their
    wallets are created with the tick's rows; renames are left to their next chat line).

    One query finds the identities and reads their wallets (a join, not a second lookup of
    the same ids)."""
    by_platform: dict[str, list[str]] = defaultdict(list)
    for platform, platform_user_id in wanted:
        by_platform[platform].append(platform_user_id)
    user_ids: dict[tuple[str, str], int] = {}
    accounts: dict[int, Account] = {}
    rows: list[Any] = []
    for _attempt in range(_STALE_RETRIES):
        if not by_platform:
            break
        result = await conn.execute(
            select(
                IDENTITIES.c.platform,
                IDENTITIES.c.platform_user_id,
                USERS.c.merged_into,
                USERS.c.id,
                USERS.c.display_name,
                USERS.c.points,
                USERS.c.xp,
                USERS.c.level,
                USERS.c.rewarded_level,
            )
            .select_from(IDENTITIES.join(USERS, USERS.c.id == IDENTITIES.c.user_id))
            .where(
                or_(
                    *(
                        and_(
                            IDENTITIES.c.platform == platform,
                            db.member_of(IDENTITIES.c.platform_user_id, ids),
                        )
                        for platform, ids in by_platform.items()
                    )
                )
            )
            .order_by(USERS.c.id)  # the writer's locking order: no deadlock with its batches
            .with_for_update(of=USERS)
        )
        rows = list(result.fetchall())
        # On PostgreSQL a wallet whose lock this waited for is read as it is now, but the
        # identity row as it was when the statement began: a wallet joined into another by a
        # !link that committed meanwhile shows up merged. Asked again (the locks are held), the
        # identities point at the wallet they joined. (SQLite holds the write lock: never.)
        if not any(row.merged_into is not None for row in rows):
            break
    for platform, platform_user_id, merged_into, user_id, *wallet in rows:
        if merged_into is not None:
            raise DatabaseConflict("a wallet was joined into another while it was being paid")
        user_ids[(platform, platform_user_id)] = user_id
        if user_id not in accounts:  # (linked identities share one wallet)
            accounts[user_id] = Account(user_id, *wallet)
    missing = [award.viewer for key, award in wanted.items() if key not in user_ids]
    return user_ids, accounts, missing


def _identities(viewers: list[Viewer], user_ids: list[int], now: datetime) -> list[Row]:
    return [
        (user_id, v.platform, v.platform_user_id, v.login, v.display_name, now, now)
        for v, user_id in zip(viewers, user_ids, strict=True)
    ]


class _Rows:
    """The rows one tick writes, worked out with the same rules the writer's ``Batch``
    applies (the balance cap, level-ups and their rewards, welcome points), as tuples in the
    order of the ``_*_KEYS`` above, for one executemany per table."""

    def __init__(self, policy: Policy, now: datetime) -> None:
        self.policy, self.now = policy, now
        self.welcomes: list[Row] = []
        self.earned: list[Row] = []
        self.rewards: list[Row] = []  # level rewards: after the earnings, per wallet
        self.xp_rows: list[Row] = []
        self.events: list[dict[str, Any]] = []
        self.level_ups: list[LevelUp] = []
        self.viewers = self.points = self.xp = 0
        self._thresholds: dict[int, int] = {}

    def welcome(self, account: Account) -> None:
        starting = self.policy.starting_points
        if starting > 0:
            account.points = starting
            self.welcomes.append(
                self._ledger(account, starting, GRANT, "welcome", f"welcome:{account.user_id}")
            )
            account.dirty = True

    def pay(self, account: Account, points: int, xp_award: int, ref: str) -> None:
        """One viewer's award (``points``, ``xp_award``) for this tick."""
        limit = self.policy.max_balance
        if limit is not None and points > 0:
            points = max(0, min(points, limit - account.points))
        if points > 0:
            account.points += points
            self.earned.append(
                (account.user_id, points, account.points, EARN, "watch", ref, None, None, self.now)
            )
        if xp_award > 0:
            xp = account.xp + xp_award
            if xp < self.next_level_at(account.level):  # the usual tick: no level-up
                account.xp = xp
                self.xp_rows.append(
                    (account.user_id, xp_award, xp, account.level, "watch", ref, self.now)
                )
            else:
                self._add_xp(account, xp_award, ref)
        if points or xp_award:
            account.dirty = True
            self.viewers += 1
            self.points += points
            self.xp += xp_award

    def _fitting(self, account: Account, amount: int) -> int:
        limit = self.policy.max_balance
        if amount <= 0:
            return 0
        return amount if limit is None else max(0, min(amount, limit - account.points))

    def _ledger(self, account: Account, amount: int, kind: str, reason: str, ref: str) -> Row:
        return (account.user_id, amount, account.points, kind, reason, ref, None, None, self.now)

    def _add_xp(self, account: Account, amount: int, ref: str) -> None:
        old_level = account.level
        account.xp += amount
        new_level = old_level
        if account.xp >= self.next_level_at(old_level):  # (most ticks level nobody up)
            new_level = max(old_level, self.policy.curve.level_for(account.xp))
        account.level = new_level
        self.xp_rows.append(
            (account.user_id, amount, account.xp, new_level, "watch", ref, self.now)
        )
        if new_level == old_level:
            return
        self.events.append(
            _event(
                "level_up",
                account.user_id,
                None,
                ref,
                {"from": old_level, "to": new_level},
                self.now,
            )
        )
        paid: list[tuple[int, int, str | None]] = []
        if new_level > account.rewarded_level:
            for level in range(account.rewarded_level + 1, new_level + 1):
                reward = self.policy.level_rewards.get(level)
                if reward is None:
                    continue
                points = self._fitting(account, reward.points)
                if points > 0:
                    account.points += points
                    reward_ref = f"level:{account.user_id}:{level}"
                    self.rewards.append(
                        self._ledger(account, points, EARN, "level_reward", reward_ref)
                    )
                paid.append((level, points, reward.message))
            account.rewarded_level = new_level
        self.level_ups.append(
            LevelUp(account.user_id, account.display_name, old_level, new_level, tuple(paid))
        )

    def next_level_at(self, level: int) -> int:
        """The total XP at which a viewer at ``level`` reaches the next one."""
        found = self._thresholds.get(level)
        if found is None:
            found = self._thresholds[level] = self.policy.curve.total_xp_for(level + 1)
        return found

    def new_users(self, accounts: list[Account]) -> list[Row]:
        now = self.now
        return [
            (a.user_id, a.display_name, a.points, a.xp, a.level, a.rewarded_level, now, now)
            for a in accounts
        ]

    def accounts(self, accounts: Iterable[Account]) -> list[Row]:
        now = self.now
        return [
            (a.points, a.xp, a.level, a.rewarded_level, now, a.user_id) for a in accounts if a.dirty
        ]


def _event(
    kind: str,
    user_id: int | None,
    ref: str | None,
    cause_ref: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "platform": None,
        "user_id": user_id,
        "stream_session_id": None,
        "ref": ref,
        "cause_ref": cause_ref,
        "payload": payload,
        "created_at": now,
    }
