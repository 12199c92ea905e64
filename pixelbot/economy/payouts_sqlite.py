"""A watch-time tick on SQLite, worked out inside SQLite (``payouts.py`` calls it).

Why: through Python's ``sqlite3`` an executemany costs ~6 us a row to bind its values, more
than SQLite spends storing the row, so a tick of 100,000 viewers written as Python-built rows
(a ledger row, an XP row, a wallet update each, and a wallet and identity per new viewer) spent
most of its time binding. Here the presence list is bound once, into a TEMP table (six values a
viewer), and every other row is made by ``INSERT .. SELECT`` from it (the wallets, new and
known, by one ``INSERT .. ON CONFLICT DO UPDATE``): the wallets are read by a join, the balance
cap and the new balances are computed in SQL, and the ledger refs are built there. Python still
applies the rules where they branch: the few viewers whose XP crosses a level threshold
(``SELECT``-ed by comparing with the next level's XP) go through ``_Rows.pay``, the same code
the PostgreSQL path runs, and their results are written back into the TEMP table; linked
identities present twice are settled by ``_one_per_wallet``'s rule on just those rows. The rows
written, and their order, are the ones the row-by-row path writes
(``tests/integration/test_payouts_rules.py`` compares the two on the same ticks).

SQLite only: TEMP tables live on the tick's connection, which holds the write lock (BEGIN
IMMEDIATE) for the whole tick; they are emptied at the start and the end of each tick, and
rolling back removes what was staged. Needs SQLite 3.33+
(``UPDATE .. FROM``, 2020; aggregate ``FILTER`` and upserts are older); an older library keeps
the row-by-row path (``SUPPORTED``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db.engine import Database
from pixelbot.db.types import UTCDateTime
from pixelbot.economy.batch import EARN, GRANT, Account, Policy
from pixelbot.economy.store import USERS
from pixelbot.errors import DatabaseConflict

if TYPE_CHECKING:
    from pixelbot.economy.payouts import Award, _Rows

__all__ = ["SUPPORTED", "pay_in_sqlite"]

SUPPORTED = sqlite3.sqlite_version_info >= (3, 33, 0)

# Pages of the TEMP database kept in memory (KiB): a tick of 100,000 viewers holds ~8 MB there
# (~13 MB when the presence list was staged too), and with the default 2 MB cache it spilled to
# a temp file (figures: README, "Why the settings").
_TEMP_CACHE_KIB = 65536

_CLEAR = tuple(f"DELETE FROM {table}" for table in ("payout_rows", "payout_new", "payout_levels"))
_SETUP = (
    f"PRAGMA temp.cache_size = -{_TEMP_CACHE_KIB}",
    # The tick's working set: a row a viewer paid, ``k`` their place in the pay order.
    "CREATE TEMP TABLE IF NOT EXISTS payout_rows ("
    " k INTEGER PRIMARY KEY, platform TEXT, puid TEXT, login TEXT, display_name TEXT,"
    " award_points INTEGER, award_xp INTEGER,"
    " user_id INTEGER, new INTEGER, merged INTEGER, wallet_name TEXT,"
    " cur_points INTEGER, cur_xp INTEGER, cur_level INTEGER, cur_rewarded INTEGER,"
    " paid INTEGER, earn_after INTEGER, xp_after INTEGER,"
    # set only for a viewer who levelled up (the rest keep cur_level / cur_rewarded / earn_after)
    " final_points INTEGER, level_after INTEGER, rewarded_after INTEGER)",
    # The new viewers in pay order: ``rank`` numbers them for the wallet ids reserved.
    "CREATE TEMP TABLE IF NOT EXISTS payout_new (rank INTEGER PRIMARY KEY, k INTEGER)",
    "CREATE TEMP TABLE IF NOT EXISTS payout_levels (level INTEGER PRIMARY KEY, next_at INTEGER)",
    *_CLEAR,
)

# The presence list goes in as the VALUES of the statement that reads the wallets, a viewer
# at a time in pay order (``_VIEWER``: their place ``k``, identity, names, points and XP); ?1-?3
# are the policy's balance cap, welcome points and start level (numbered, they come before the
# values' plain ``?``, which count on from ?4). The wallets are read with a join; the cap and
# the balances as ``_Rows.pay`` computes them for a viewer who does not level up. New viewers
# (no identity yet) start as ``_Rows.welcome`` leaves them (``new``); their wallet ids are given
# below, in pay order. (Staging the list in a TEMP table first, and reading it from there, cost
# ~50 ms more of a tick of 100,000.)
_BUILD = """
INSERT INTO payout_rows (k, platform, puid, login, display_name, award_points, award_xp,
    user_id, new, merged, wallet_name, cur_points, cur_xp, cur_level, cur_rewarded,
    paid, earn_after, xp_after)
SELECT k, platform, puid, login, display_name, award_points, award_xp,
    user_id, new, merged, wallet_name, cur_points, cur_xp, cur_level, cur_rewarded,
    paid, cur_points + max(paid, 0), cur_xp + max(award_xp, 0)
FROM (
    SELECT *,
        CASE WHEN ?1 IS NOT NULL AND award_points > 0
            THEN max(0, min(award_points, ?1 - cur_points)) ELSE award_points END AS paid
    FROM (
        SELECT s.k, s.platform, s.puid, s.login, s.display_name,
            s.points AS award_points, s.xp AS award_xp,
            i.user_id, i.user_id IS NULL AS new,
            u.merged_into AS merged,
            coalesce(u.display_name, s.display_name) AS wallet_name,
            coalesce(u.points, ?2) AS cur_points,
            coalesce(u.xp, 0) AS cur_xp,
            coalesce(u.level, ?3) AS cur_level,
            coalesce(u.rewarded_level, ?3) AS cur_rewarded
        FROM (
            SELECT column1 AS k, column2 AS platform, column3 AS puid, column4 AS login,
                column5 AS display_name, column6 AS points, column7 AS xp
            FROM (VALUES {viewers})
        ) AS s
        LEFT JOIN identities AS i ON i.platform = s.platform AND i.platform_user_id = s.puid
        LEFT JOIN users AS u ON u.id = i.user_id
    )
)
"""
_VIEWER = "(?, ?, ?, ?, ?, ?, ?)"

# One scan for what the tick needs to know of its rows: wallets joined into another (a conflict),
# wallets present more than once (linked identities), its figures (as ``_Rows.pay`` counts
# them), and the levels of the viewers given XP, for the level-up check (one scan instead of
# four: ~60 ms of a tick of 100,000).
_SUMMARY = (
    "SELECT count(merged), count(user_id) - count(DISTINCT user_id),"
    " count(*) FILTER (WHERE paid != 0 OR award_xp != 0), coalesce(sum(paid), 0),"
    " coalesce(sum(award_xp), 0), group_concat(DISTINCT cur_level) FILTER (WHERE award_xp > 0)"
    " FROM payout_rows"
)
_SHARED = (
    "SELECT k, user_id, award_points, award_xp FROM payout_rows WHERE user_id IN ("
    " SELECT user_id FROM payout_rows WHERE user_id IS NOT NULL"
    " GROUP BY user_id HAVING count(*) > 1) ORDER BY k"
)
_NEW = "INSERT INTO payout_new (k) SELECT k FROM payout_rows WHERE new ORDER BY k"
_NEW_IDS = (
    "UPDATE payout_rows SET user_id = ? + n.rank FROM payout_new AS n WHERE payout_rows.k = n.k"
)
_LEVELLING = (
    "SELECT p.k, p.platform, p.puid, p.award_points, p.award_xp,"
    " p.user_id, p.wallet_name, p.cur_points, p.cur_xp, p.cur_level, p.cur_rewarded"
    " FROM payout_rows AS p JOIN payout_levels AS l ON l.level = p.cur_level"
    " WHERE p.award_xp > 0 AND p.xp_after >= l.next_at ORDER BY p.k"
)
# (the points earned and the XP after are what _BUILD computed: the cap applies before the
# level-up, and to the balance the wallet had)
_LEVELLED = (
    "UPDATE payout_rows SET final_points = ?, level_after = ?, rewarded_after = ? WHERE k = ?"
)

_NOW = bindparam("now", type_=UTCDateTime())
# The new wallets, as the tick leaves them, and the known wallets the tick changed
# (``Account.dirty``: points paid or XP given), in one statement: a known wallet's row is
# found by its id and updated (two statements, an INSERT and an UPDATE .. FROM, took ~25 ms
# more for 50,000 of each). A new wallet's id is above every id (``Database.next_ids``), so it
# never meets one.
_UPSERT_USERS = text(
    "INSERT INTO users (id, display_name, points, xp, level, rewarded_level,"
    " created_at, updated_at)"
    " SELECT user_id, display_name, coalesce(final_points, earn_after), xp_after,"
    " coalesce(level_after, cur_level), coalesce(rewarded_after, cur_rewarded), :now, :now"
    " FROM payout_rows WHERE new OR paid != 0 OR award_xp != 0 ORDER BY k"
    " ON CONFLICT (id) DO UPDATE SET points = excluded.points, xp = excluded.xp,"
    " level = excluded.level, rewarded_level = excluded.rewarded_level,"
    " updated_at = excluded.updated_at"
).bindparams(_NOW)
_INSERT_IDENTITIES = text(
    "INSERT INTO identities (user_id, platform, platform_user_id, login, display_name,"
    " created_at, updated_at)"
    " SELECT user_id, platform, puid, login, display_name, :now, :now"
    " FROM payout_rows WHERE new ORDER BY k"
).bindparams(_NOW)
_INSERT_WELCOMES = text(
    "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, actor,"
    " refund_of, created_at)"
    " SELECT user_id, :points, :points, :kind, 'welcome', 'welcome:' || user_id, NULL, NULL, :now"
    " FROM payout_rows WHERE new ORDER BY k"
).bindparams(_NOW)
_INSERT_EARNED = text(
    "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, actor,"
    " refund_of, created_at)"
    " SELECT user_id, paid, earn_after, :kind, 'watch', :prefix || platform || ':' || puid,"
    " NULL, NULL, :now FROM payout_rows WHERE paid > 0 ORDER BY k"
).bindparams(_NOW)
_INSERT_XP = text(
    "INSERT INTO xp_transactions (user_id, amount, xp_after, level_after, reason, ref,"
    " created_at)"
    " SELECT user_id, award_xp, xp_after, coalesce(level_after, cur_level), 'watch',"
    " :prefix || platform || ':' || puid, :now FROM payout_rows WHERE award_xp > 0 ORDER BY k"
).bindparams(_NOW)
_TOTALS = (
    "SELECT count(*), coalesce(sum(paid), 0), coalesce(sum(award_xp), 0) FROM payout_rows"
    " WHERE paid != 0 OR award_xp != 0"
)


async def pay_in_sqlite(
    conn: AsyncConnection,
    db: Database,
    rows: _Rows,
    tick_ref: str,
    awards: Iterable[Award],
) -> None:
    """Write one tick's wallets, identities, earn and XP rows. Left for the caller to write:
    the level rewards (``rows.rewards``, after the earn rows) and the level-up events
    (``rows.events``); the tick's figures are set in ``rows.viewers/points/xp``."""
    policy = rows.policy
    for statement in _SETUP:
        await conn.exec_driver_sql(statement)
    await _build(conn, policy, awards)
    summary = tuple((await conn.exec_driver_sql(_SUMMARY)).one())
    merged, shared, viewers, points, xp, levels = summary
    if merged:
        # (SQLite holds the write lock while the wallets are read: a !link cannot interleave)
        raise DatabaseConflict("a wallet was joined into another while it was being paid")
    if shared:
        await _one_per_wallet(conn)
        viewers, points, xp = tuple((await conn.exec_driver_sql(_TOTALS)).one())  # (fewer rows)
    new = await conn.exec_driver_sql(_NEW)
    new_ids = await db.next_ids(conn, USERS, new.rowcount)
    if new_ids:
        if new_ids != list(range(new_ids[0], new_ids[0] + len(new_ids))):
            raise AssertionError("SQLite reserves ids as one range")  # (db.next_ids)
        await conn.exec_driver_sql(_NEW_IDS, (new_ids[0] - 1,))
    if levels is not None:
        await _level_ups(conn, rows, tick_ref, [int(level) for level in levels.split(",")])
    # (after _level_ups: ``_Rows.pay`` counted its viewers too, and these figures are all)
    rows.viewers, rows.points, rows.xp = int(viewers), int(points), int(xp)
    now = {"now": rows.now}
    await conn.execute(_UPSERT_USERS, now)
    await conn.execute(_INSERT_IDENTITIES, now)
    if policy.starting_points > 0:
        await conn.execute(
            _INSERT_WELCOMES, {"points": policy.starting_points, "kind": GRANT, **now}
        )
    prefix = f"{tick_ref}:"
    await conn.execute(_INSERT_EARNED, {"kind": EARN, "prefix": prefix, **now})
    await conn.execute(_INSERT_XP, {"prefix": prefix, **now})
    for statement in _CLEAR:  # (the staged rows would otherwise stay in memory until the next)
        await conn.exec_driver_sql(statement)


# Viewers per statement: one a viewer spent ~40% more binding and stepping (3 + 140 x 7 = 983
# values, under the 999 an older SQLite allows in one statement).
_BUILD_ROWS = 140


async def _build(conn: AsyncConnection, policy: Policy, awards: Iterable[Award]) -> None:
    # One flat list of every value, cut into statements: no tuple per viewer is kept (building
    # and then flattening 100,000 of them took ~50 ms; this ~20 ms).
    values: list[str | int | None] = []
    add = values.extend
    for k, award in enumerate(awards, 1):
        v = award.viewer
        add((k, v.platform, v.platform_user_id, v.login, v.display_name, award.points, award.xp))
    head: list[str | int | None] = [
        policy.max_balance,
        max(policy.starting_points, 0),
        policy.curve.start_level,
    ]
    size = _BUILD_ROWS * 7
    whole = len(values) - len(values) % size
    if whole:
        await conn.exec_driver_sql(
            _BUILD.format(viewers=", ".join([_VIEWER] * _BUILD_ROWS)),
            [tuple(head + values[i : i + size]) for i in range(0, whole, size)],
        )
    if whole < len(values):
        rest = (len(values) - whole) // 7
        await conn.exec_driver_sql(
            _BUILD.format(viewers=", ".join([_VIEWER] * rest)), tuple(head + values[whole:])
        )


async def _one_per_wallet(conn: AsyncConnection) -> None:
    """Identities linked into one wallet and present together: keep the row
    ``payouts._one_per_wallet`` pays (the best award, the first of equals) at the place of the
    wallet's first row, and drop the others. Only the wallets present twice are read."""
    result = await conn.exec_driver_sql(_SHARED)
    rows = [tuple(row) for row in result.fetchall()]
    first: dict[int, int] = {}
    best: dict[int, tuple[int, int, int]] = {}  # user_id -> (k, points, xp)
    for k, user_id, points, xp in rows:
        first.setdefault(user_id, k)
        kept = best.get(user_id)
        if kept is None or (points, xp) > (kept[1], kept[2]):
            best[user_id] = (k, points, xp)
    kept_ks = {k for k, _, _ in best.values()}
    await conn.exec_driver_sql(
        "DELETE FROM payout_rows WHERE k = ?", [(k,) for k, *_ in rows if k not in kept_ks]
    )
    moves = [(first[user_id], k) for user_id, (k, _, _) in best.items() if first[user_id] != k]
    if moves:  # (the wallet's first row was dropped just above: its place is free)
        await conn.exec_driver_sql("UPDATE payout_rows SET k = ? WHERE k = ?", moves)


async def _level_ups(
    conn: AsyncConnection,
    rows: _Rows,
    tick_ref: str,
    levels: list[int],
) -> None:
    """The viewers whose XP reaches their next level are paid by ``_Rows.pay`` (level-ups,
    their rewards and events, the cap on both), and the result is written back to their rows.
    ``levels``: the levels of the viewers given XP."""
    await conn.exec_driver_sql(
        "INSERT INTO payout_levels (level, next_at) VALUES (?, ?)",
        [(level, rows.next_level_at(level)) for level in levels],
    )
    levelling = [tuple(row) for row in (await conn.exec_driver_sql(_LEVELLING)).fetchall()]
    if not levelling:
        return
    results: list[tuple[int, int, int, int]] = []
    for k, platform, puid, points, xp, user_id, *wallet in levelling:
        account = Account(user_id, *wallet)
        rows.pay(account, points, xp, f"{tick_ref}:{platform}:{puid}")
        # Its earn and XP rows are written with everyone's, in pay order, from payout_rows.
        rows.earned.clear()
        rows.xp_rows.clear()
        results.append((account.points, account.level, account.rewarded_level, k))
    await conn.exec_driver_sql(_LEVELLED, results)
