"""A watch-time tick worked out inside the database, SQLite or PostgreSQL (``payouts.py``
calls it).

Why: built in Python, a tick of 100,000 viewers is ~450,000 rows made and bound one by one (a
ledger row, an XP row, a wallet update each, and a wallet and identity per new viewer). Through
``sqlite3`` an executemany costs ~6 us a row to bind, more than SQLite spends storing it; on
PostgreSQL the rows built in Python and sent by executemany took ~20 s, 70% of it the server
executing one statement per row. Here the presence list goes in once, into the
tick's working table (``payout_rows``, a row a viewer paid, ``k`` their place in the pay order),
and every other row is made by ``INSERT .. SELECT`` from it (the wallets, new and known, by one
``INSERT .. ON CONFLICT DO UPDATE``): the balance cap and the new balances are computed in SQL
(once, in ``_BUILD``, for both dialects), and so are the ledger refs. Python still applies the
rules where they branch: the few viewers whose XP crosses a level threshold (``SELECT``-ed by
comparing with the next level's XP) go through ``_Rows.pay``, the same code as the row-by-row
path, and their results are written back into ``payout_rows``; linked identities present twice
are settled by ``_one_per_wallet``'s rule on just those rows. The rows written, and their order,
are the ones the row-by-row path writes (``tests/integration/test_payouts_rules.py`` compares
the two on the same ticks, on both backends).

Where the dialects differ (each is a named member of ``_Dialect``, or a ``_SQLite`` /
``_PostgreSQL`` step below; everything else is the same statement text):

- **Staging the presence list.** SQLite binds it into the statement that reads the wallets
  (``VALUES``, 140 viewers a statement; a TEMP table of it cost ~50 ms more). PostgreSQL copies
  it into a TEMP table (``payout_in``) with asyncpg's binary ``COPY`` (``copy_records_to_table``,
  in the tick's transaction) and reads the wallets from there.
- **Locking, and reading under it.** SQLite's write transaction (``BEGIN IMMEDIATE``) holds the
  whole database: nothing changes under the tick. A PostgreSQL database may be shared by several
  bot processes, so there the known wallets are read and locked by one statement (``FOR UPDATE``
  in id order, the writer's batches' order, so deadlocks are rare; PostgreSQL rolls one back
  and the writer runs it again), which returns a wallet it
  waited for as the other transaction committed it: the cap and the new balances are computed
  from the balance as it is, and nobody can change it before the tick commits. New viewers are
  read by a second statement. Then, every wallet locked (a ``!link`` or ``!unlink`` must lock
  the wallet an identity leaves), one statement checks that each viewer's identity still points
  where it was read; an identity linked, unlinked or created by another process in between makes
  the tick read again (``_READS``; the locks already taken stay). An identity created by another
  process after that check makes the insert of the new identities come up short (``ON CONFLICT
  DO NOTHING``, on both dialects): ``DatabaseConflict``, nothing saved, and the writer runs the
  tick again. (SQLite can never meet any of this: the checks are skipped there. A second
  process paying the same tick waits on ``payouts.py``'s lock on the tick's ref.)
- **Functions.** The larger and smaller of two values are ``max``/``min`` in SQLite,
  ``GREATEST``/``LEAST`` in PostgreSQL; the levels to check come back as one text, through
  ``group_concat`` or ``string_agg``.
- **New wallet ids.** The new viewers are ranked in pay order by SQLite's rowid (a window
  function cost ~50 ms more there) and by ``row_number()`` in PostgreSQL, which has no rowid.
  SQLite's ids are one range above ``max(id)`` (the first + the rank); PostgreSQL's come from
  the table's sequence, not necessarily consecutive (another process draws too): an array,
  indexed by the rank.
- **TEMP tables.** SQLite's are emptied at the start and the end of each tick (``DELETE``), and
  its TEMP page cache is raised. PostgreSQL's are ``ON COMMIT DELETE ROWS`` (a ``DELETE`` would
  leave dead rows that autovacuum never visits in a TEMP table), and ``payout_in`` is
  ``ANALYZE``-d once filled (autovacuum never does that either). Column types: SQLite's
  ``INTEGER`` is PostgreSQL's ``bigint`` or ``boolean``. PostgreSQL's tick also raises
  ``work_mem`` for its own transaction (``SET LOCAL``), so its sorts of 100,000 rows in pay
  order stay in memory.

TEMP tables live on the tick's connection; rolling back removes what was staged. SQLite needs
3.33+ (``UPDATE .. FROM``, 2020; aggregate ``FILTER`` and upserts are older): an older library
keeps the row-by-row path (``supported``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db.engine import Database
from pixelbot.db.types import UTCDateTime
from pixelbot.economy.batch import EARN, GRANT, Account, Policy
from pixelbot.economy.store import USERS
from pixelbot.errors import DatabaseConflict, DatabaseDamaged

if TYPE_CHECKING:
    from pixelbot.economy.payouts import Award, _Rows

__all__ = ["SQLITE_SUPPORTED", "pay_in_sql", "supported"]

SQLITE_SUPPORTED = sqlite3.sqlite_version_info >= (3, 33, 0)


def supported(db: Database) -> bool:
    """Whether ``db`` can work a tick out inside itself (else ``payouts.py`` pays row by row)."""
    if db.is_sqlite:
        return SQLITE_SUPPORTED
    return db.url.get_backend_name() == "postgresql"


@dataclass(frozen=True)
class _Dialect:
    integer: str  # the TEMP tables' numbers (ids, amounts, levels)
    boolean: str  # payout_rows.new
    greatest: str  # the larger of two values
    least: str  # the smaller of two values
    levels: str  # the distinct levels of the viewers given XP, as one comma-separated text
    temp: str  # after CREATE TEMP TABLE (..): what becomes of the rows at commit


_SQLITE_WORDS = _Dialect(
    integer="INTEGER",
    boolean="INTEGER",
    greatest="max",
    least="min",
    levels="group_concat(DISTINCT cur_level)",
    temp="",
)
_POSTGRESQL_WORDS = _Dialect(
    integer="bigint",
    boolean="boolean",
    greatest="GREATEST",
    least="LEAST",
    levels="string_agg(DISTINCT CAST(cur_level AS text), ',')",
    temp=" ON COMMIT DELETE ROWS",
)

_TABLES = (
    # The tick's working set: a row a viewer paid, ``k`` their place in the pay order.
    "CREATE TEMP TABLE IF NOT EXISTS payout_rows ("
    " k {integer} PRIMARY KEY, platform TEXT, puid TEXT, login TEXT, display_name TEXT,"
    " award_points {integer}, award_xp {integer},"
    " user_id {integer}, new {boolean}, merged {integer}, wallet_name TEXT,"
    " cur_points {integer}, cur_xp {integer}, cur_level {integer}, cur_rewarded {integer},"
    " paid {integer}, earn_after {integer}, xp_after {integer},"
    # set only for a viewer who levelled up (the rest keep cur_level / cur_rewarded / earn_after)
    " final_points {integer}, level_after {integer}, rewarded_after {integer}){temp}",
    # The new viewers in pay order: ``rank`` numbers them for the wallet ids reserved.
    "CREATE TEMP TABLE IF NOT EXISTS payout_new (rank {integer} PRIMARY KEY, k {integer}){temp}",
    "CREATE TEMP TABLE IF NOT EXISTS payout_levels ("
    " level {integer} PRIMARY KEY, next_at {integer}){temp}",
)

# The wallets as ``_Rows.pay`` finds them, for a viewer who does not level up: the cap (``cap``,
# the policy's ``max_balance``, may be NULL) and the balances after the award. ``wallets`` gives
# each viewer's award and wallet (``cur_*``; a new viewer's as ``_Rows.welcome`` leaves it).
_BUILD = """
INSERT INTO payout_rows (k, platform, puid, login, display_name, award_points, award_xp,
    user_id, new, merged, wallet_name, cur_points, cur_xp, cur_level, cur_rewarded,
    paid, earn_after, xp_after)
SELECT k, platform, puid, login, display_name, award_points, award_xp,
    user_id, new, merged, wallet_name, cur_points, cur_xp, cur_level, cur_rewarded,
    paid, cur_points + {greatest}(paid, 0), cur_xp + {greatest}(award_xp, 0)
FROM (
    SELECT *,
        CASE WHEN {cap} IS NOT NULL AND award_points > 0
            THEN {greatest}(0, {least}(award_points, {cap} - cur_points))
            ELSE award_points END AS paid
    FROM ({wallets}) AS w
) AS c
"""

# SQLite: the presence list is the VALUES of the statement, a viewer at a time in pay order
# (``_VIEWER``: their place ``k``, identity, names, points and XP); ?1-?3 are the balance cap,
# welcome points and start level (numbered, they come before the values' plain ``?``, which
# count on from ?4). New viewers (no identity yet) have no wallet to join; their ids are given
# below, in pay order.
_SQLITE_WALLETS = """
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
"""
_VIEWER = "(?, ?, ?, ?, ?, ?, ?)"

# PostgreSQL: the known wallets, read and locked in id order (a locking clause may not reach the
# nullable side of an outer join: the new viewers are read by the statement after).
_POSTGRESQL_KNOWN = """
    SELECT s.k, s.platform, s.puid, s.login, s.display_name,
        s.points AS award_points, s.xp AS award_xp,
        u.id AS user_id, false AS new, u.merged_into AS merged,
        u.display_name AS wallet_name, u.points AS cur_points, u.xp AS cur_xp,
        u.level AS cur_level, u.rewarded_level AS cur_rewarded
    FROM payout_in AS s
    JOIN identities AS i ON i.platform = s.platform AND i.platform_user_id = s.puid
    JOIN users AS u ON u.id = i.user_id
    ORDER BY u.id
    FOR UPDATE OF u
"""
_POSTGRESQL_NEW_WALLETS = """
    SELECT s.k, s.platform, s.puid, s.login, s.display_name,
        s.points AS award_points, s.xp AS award_xp,
        CAST(NULL AS bigint) AS user_id, true AS new, CAST(NULL AS bigint) AS merged,
        s.display_name AS wallet_name, CAST(:welcome AS bigint) AS cur_points,
        CAST(0 AS bigint) AS cur_xp, CAST(:start AS bigint) AS cur_level,
        CAST(:start AS bigint) AS cur_rewarded
    FROM payout_in AS s
    WHERE NOT EXISTS (
        SELECT FROM identities AS i WHERE i.platform = s.platform AND i.platform_user_id = s.puid
    )
"""
_POSTGRESQL_IN = (
    "CREATE TEMP TABLE IF NOT EXISTS payout_in (k bigint, platform text, puid text, login text,"
    " display_name text, points bigint, xp bigint) ON COMMIT DELETE ROWS"
)
_IN_COLUMNS = ("k", "platform", "puid", "login", "display_name", "points", "xp")
# Read with every wallet locked: viewers read as new who have an identity now, or whose identity
# points at another wallet than the one read (linked or unlinked meanwhile), and the rows read
# (a viewer whose identity appeared between the two reading statements is in neither).
_POSTGRESQL_STALE = text(
    "SELECT (SELECT count(*) FROM payout_rows),"
    " (SELECT count(*) FROM payout_rows AS p JOIN identities AS i"
    "  ON i.platform = p.platform AND i.platform_user_id = p.puid"
    "  WHERE p.new OR i.user_id <> p.user_id)"
)
_READS = 3  # readings of the present wallets while other processes link or create them

# One scan for what the tick needs to know of its rows: wallets joined into another (a conflict),
# wallets present more than once (linked identities), its figures (as ``_Rows.pay`` counts
# them), and the levels of the viewers given XP, for the level-up check (one scan instead of
# four: ~60 ms of a tick of 100,000 on SQLite).
_SUMMARY = (
    "SELECT count(merged), count(user_id) - count(DISTINCT user_id),"
    " count(*) FILTER (WHERE paid != 0 OR award_xp != 0), coalesce(sum(paid), 0),"
    " coalesce(sum(award_xp), 0), {levels} FILTER (WHERE award_xp > 0)"
    " FROM payout_rows"
)
_SHARED = text(
    "SELECT k, user_id, award_points, award_xp FROM payout_rows WHERE user_id IN ("
    " SELECT user_id FROM payout_rows WHERE user_id IS NOT NULL"
    " GROUP BY user_id HAVING count(*) > 1) ORDER BY k"
)
_DROP_ROW = text("DELETE FROM payout_rows WHERE k = :k")
_MOVE_ROW = text("UPDATE payout_rows SET k = :to WHERE k = :k")
# (SQLite numbers them as its rowid, from 1 in the emptied table: a window function took
# ~50 ms more for 50,000; PostgreSQL has no rowid)
_SQLITE_NEW = text("INSERT INTO payout_new (k) SELECT k FROM payout_rows WHERE new ORDER BY k")
_POSTGRESQL_NEW = text(
    "INSERT INTO payout_new (rank, k)"
    " SELECT row_number() OVER (ORDER BY k), k FROM payout_rows WHERE new"
)
_SQLITE_NEW_IDS = text(
    "UPDATE payout_rows SET user_id = :before + n.rank FROM payout_new AS n"
    " WHERE payout_rows.k = n.k"
)
_POSTGRESQL_NEW_IDS = text(
    "UPDATE payout_rows SET user_id = (CAST(:ids AS bigint[]))[n.rank] FROM payout_new AS n"
    " WHERE payout_rows.k = n.k"
)
_LEVELS = text("INSERT INTO payout_levels (level, next_at) VALUES (:level, :next_at)")
_LEVELLING = text(
    "SELECT p.k, p.platform, p.puid, p.award_points, p.award_xp,"
    " p.user_id, p.wallet_name, p.cur_points, p.cur_xp, p.cur_level, p.cur_rewarded"
    " FROM payout_rows AS p JOIN payout_levels AS l ON l.level = p.cur_level"
    " WHERE p.award_xp > 0 AND p.xp_after >= l.next_at ORDER BY p.k"
)
# (the points earned and the XP after are what _BUILD computed: the cap applies before the
# level-up, and to the balance the wallet had)
_LEVELLED = text(
    "UPDATE payout_rows SET final_points = :points, level_after = :level,"
    " rewarded_after = :rewarded WHERE k = :k"
)

_NOW = bindparam("now", type_=UTCDateTime())
_PREFIX = bindparam("prefix", type_=String())
_KIND = bindparam("kind", type_=String())
# The new wallets, as the tick leaves them, and the known wallets the tick changed
# (``Account.dirty``: points paid or XP given), in one statement: a known wallet's row is
# found by its id and updated (two statements, an INSERT and an UPDATE .. FROM, took ~25 ms
# more for 50,000 of each on SQLite). A new wallet's id is above every id
# (``Database.next_ids``), so it never meets one.
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
# (an identity another process created meanwhile is not overwritten: the tick sees it come up
# short and fails with DatabaseConflict, to be run again)
_INSERT_IDENTITIES = text(
    "INSERT INTO identities (user_id, platform, platform_user_id, login, display_name,"
    " created_at, updated_at)"
    " SELECT user_id, platform, puid, login, display_name, :now, :now"
    " FROM payout_rows WHERE new ORDER BY k"
    " ON CONFLICT (platform, platform_user_id) DO NOTHING"
).bindparams(_NOW)
_INSERT_WELCOMES = text(
    "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, actor,"
    " refund_of, created_at)"
    " SELECT user_id, :points, :points, :kind, 'welcome', 'welcome:' || user_id, NULL, NULL, :now"
    " FROM payout_rows WHERE new ORDER BY k"
).bindparams(_NOW, _KIND, bindparam("points", type_=BigInteger()))
_INSERT_EARNED = text(
    "INSERT INTO transactions (user_id, amount, balance_after, kind, reason, ref, actor,"
    " refund_of, created_at)"
    " SELECT user_id, paid, earn_after, :kind, 'watch', :prefix || platform || ':' || puid,"
    " NULL, NULL, :now FROM payout_rows WHERE paid > 0 ORDER BY k"
).bindparams(_NOW, _KIND, _PREFIX)
_INSERT_XP = text(
    "INSERT INTO xp_transactions (user_id, amount, xp_after, level_after, reason, ref,"
    " created_at)"
    " SELECT user_id, award_xp, xp_after, coalesce(level_after, cur_level), 'watch',"
    " :prefix || platform || ':' || puid, :now FROM payout_rows WHERE award_xp > 0 ORDER BY k"
).bindparams(_NOW, _PREFIX)
_TOTALS = (
    "SELECT count(*), coalesce(sum(paid), 0), coalesce(sum(award_xp), 0) FROM payout_rows"
    " WHERE paid != 0 OR award_xp != 0"
)


def _tables(words: _Dialect) -> tuple[str, ...]:
    return tuple(table.format(**vars(words)) for table in _TABLES)


def _build(words: _Dialect, cap: str, wallets: str) -> str:
    return _BUILD.format(greatest=words.greatest, least=words.least, cap=cap, wallets=wallets)


# Pages of SQLite's TEMP database kept in memory (KiB): a tick of 100,000 viewers holds ~8 MB
# there, and with the default 2 MB cache it spilled to a temp file (figures: README, "Why the
# settings").
_TEMP_CACHE_KIB = 65536
# Viewers per SQLite statement: one a viewer spent ~40% more binding and stepping (3 + 140 x 7
# = 983 values, under the 999 an older SQLite allows in one statement).
_BUILD_ROWS = 140


class _SQLite:
    """SQLite's steps: the write lock is held, the presence list is bound into the build."""

    clear = tuple(f"DELETE FROM {name}" for name in ("payout_rows", "payout_new", "payout_levels"))
    setup = (f"PRAGMA temp.cache_size = -{_TEMP_CACHE_KIB}", *_tables(_SQLITE_WORDS), *clear)
    build = _build(_SQLITE_WORDS, "?1", _SQLITE_WALLETS)
    summary = _SUMMARY.format(levels=_SQLITE_WORDS.levels)

    async def read_wallets(
        self, conn: AsyncConnection, db: Database, policy: Policy, awards: Iterable[Award]
    ) -> None:
        # One flat list of every value, cut into statements: no tuple per viewer is kept
        # (building and then flattening 100,000 of them took ~50 ms; this ~20 ms).
        values: list[str | int | None] = []
        add = values.extend
        for k, award in enumerate(awards, 1):
            v = award.viewer
            add(
                (k, v.platform, v.platform_user_id, v.login, v.display_name, award.points, award.xp)
            )
        head: list[str | int | None] = [
            policy.max_balance,
            max(policy.starting_points, 0),
            policy.curve.start_level,
        ]
        size = _BUILD_ROWS * 7
        whole = len(values) - len(values) % size
        if whole:
            await conn.exec_driver_sql(
                self.build.format(viewers=", ".join([_VIEWER] * _BUILD_ROWS)),
                [tuple(head + values[i : i + size]) for i in range(0, whole, size)],
            )
        if whole < len(values):
            rest = (len(values) - whole) // 7
            await conn.exec_driver_sql(
                self.build.format(viewers=", ".join([_VIEWER] * rest)),
                tuple(head + values[whole:]),
            )

    async def number_new(self, conn: AsyncConnection, db: Database) -> int:
        """Give the new viewers their wallet ids, in pay order; how many they are."""
        count = (await conn.execute(_SQLITE_NEW)).rowcount
        new_ids = await db.next_ids(conn, USERS, count)
        if new_ids:
            if new_ids != list(range(new_ids[0], new_ids[0] + len(new_ids))):
                raise AssertionError("SQLite reserves ids as one range")  # (db.next_ids)
            await conn.execute(_SQLITE_NEW_IDS, {"before": new_ids[0] - 1})
        return count


_CAP = "CAST(:cap AS bigint)"
# Memory for each sort and hash of the tick (PostgreSQL; for its transaction only): with the
# default 4 MB, sorting 100,000 rows in pay order spilled to disk in each of five statements.
_WORK_MEM = "64MB"


class _PostgreSQL:
    """PostgreSQL's steps: the presence list is copied in, the wallets locked as they are read,
    and the identities checked under the locks (see the module docstring)."""

    clear = ()  # (ON COMMIT DELETE ROWS)
    setup = (f"SET LOCAL work_mem = '{_WORK_MEM}'", _POSTGRESQL_IN, *_tables(_POSTGRESQL_WORDS))
    build_known = text(_build(_POSTGRESQL_WORDS, _CAP, _POSTGRESQL_KNOWN))
    build_new = text(_build(_POSTGRESQL_WORDS, _CAP, _POSTGRESQL_NEW_WALLETS))
    summary = _SUMMARY.format(levels=_POSTGRESQL_WORDS.levels)

    async def read_wallets(
        self, conn: AsyncConnection, db: Database, policy: Policy, awards: Iterable[Award]
    ) -> None:
        staged = await self._stage(conn, db, awards)
        await conn.exec_driver_sql("ANALYZE payout_in")
        given = {
            "cap": policy.max_balance,
            "welcome": max(policy.starting_points, 0),
            "start": policy.curve.start_level,
        }
        for _reading in range(_READS):
            await conn.execute(self.build_known, {"cap": given["cap"]})
            await conn.execute(self.build_new, given)
            read, stale = (await conn.execute(_POSTGRESQL_STALE)).one()
            if read == staged and not stale:
                return
            await conn.exec_driver_sql("DELETE FROM payout_rows")
        raise DatabaseConflict("the viewers' wallets kept being linked or created by another bot")

    @staticmethod
    async def _stage(conn: AsyncConnection, db: Database, awards: Iterable[Award]) -> int:
        """Copy the presence list into ``payout_in``; the rows copied."""
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg's own connection
        if not driver.is_in_transaction():  # (the tick's statements so far began it)
            raise AssertionError("the presence list would be copied outside the tick")
        try:
            status = await driver.copy_records_to_table(
                "payout_in", records=_records(awards), columns=_IN_COLUMNS
            )
        except Exception as error:  # asyncpg's own: SQLAlchemy's translation never saw it
            db.faults.raise_for(error)  # (an outage: reported, and typed like any other)
            raise
        return int(status.split()[-1])  # "COPY n"

    async def number_new(self, conn: AsyncConnection, db: Database) -> int:
        """Give the new viewers their wallet ids, in pay order; how many they are."""
        count = (await conn.execute(_POSTGRESQL_NEW)).rowcount
        new_ids = await db.next_ids(conn, USERS, count)
        if new_ids:
            await conn.execute(_POSTGRESQL_NEW_IDS, {"ids": new_ids})
        return count


def _records(awards: Iterable[Award]) -> Iterator[tuple[Any, ...]]:
    for k, award in enumerate(awards, 1):
        v = award.viewer
        yield (k, v.platform, v.platform_user_id, v.login, v.display_name, award.points, award.xp)


# A new wallet whose id an older wallet already has (the upsert would update that wallet).
_NEW_IDS_TAKEN = text(
    "SELECT min(r.user_id) FROM payout_rows r JOIN users u ON u.id = r.user_id WHERE r.new"
)


async def _check_new_ids(conn: AsyncConnection, db: Database) -> None:
    """On PostgreSQL new wallet ids come from the ``users`` sequence, which is behind the
    wallets only after a restore of the data without it (or rows added by hand): then the
    upsert of the tick's wallets would overwrite an older wallet with a new viewer's. Nothing
    is saved (the transaction rolls back), and the operator is told how to repair it. (On
    SQLite a new id is above the largest one there is: it cannot happen.)"""
    taken = (await conn.execute(_NEW_IDS_TAKEN)).scalar_one_or_none()
    if taken is not None:
        raise DatabaseDamaged(
            f"the users id sequence is behind the wallets (id {taken} is taken): nothing was "
            "paid; repair it with SELECT setval(pg_get_serial_sequence('users', 'id'), "
            "(SELECT max(id) FROM users))",
            db.faults.where,
        )


async def pay_in_sql(
    conn: AsyncConnection,
    db: Database,
    rows: _Rows,
    tick_ref: str,
    awards: Iterable[Award],
) -> None:
    """Write one tick's wallets, identities, earn and XP rows. Left for the caller to write:
    the level rewards (``rows.rewards``, after the earn rows) and the level-up events
    (``rows.events``); the tick's figures are set in ``rows.viewers/points/xp``."""
    dialect: _SQLite | _PostgreSQL = _SQLite() if db.is_sqlite else _PostgreSQL()
    policy = rows.policy
    for statement in dialect.setup:
        await conn.exec_driver_sql(statement)
    await dialect.read_wallets(conn, db, policy, awards)
    summary = tuple((await conn.exec_driver_sql(dialect.summary)).one())
    merged, shared, viewers, points, xp, levels = summary
    if merged:
        # (SQLite holds the write lock while the wallets are read, and on PostgreSQL a wallet
        # joined meanwhile was read again above: never, unless something is badly wrong)
        raise DatabaseConflict("a wallet was joined into another while it was being paid")
    if shared:
        await _one_per_wallet(conn)
        viewers, points, xp = tuple((await conn.exec_driver_sql(_TOTALS)).one())  # (fewer rows)
    new = await dialect.number_new(conn, db)
    if levels is not None:
        await _level_ups(conn, rows, tick_ref, [int(level) for level in levels.split(",")])
    # (after _level_ups: ``_Rows.pay`` counted its viewers too, and these figures are all)
    rows.viewers, rows.points, rows.xp = int(viewers), int(points), int(xp)
    now = {"now": rows.now}
    if new and not db.is_sqlite:
        await _check_new_ids(conn, db)
    await conn.execute(_UPSERT_USERS, now)
    identities = await conn.execute(_INSERT_IDENTITIES, now)
    if identities.rowcount != new:
        raise DatabaseConflict("a new viewer's wallet was made by another bot during the tick")
    if policy.starting_points > 0:
        await conn.execute(
            _INSERT_WELCOMES, {"points": policy.starting_points, "kind": GRANT, **now}
        )
    prefix = f"{tick_ref}:"
    await conn.execute(_INSERT_EARNED, {"kind": EARN, "prefix": prefix, **now})
    await conn.execute(_INSERT_XP, {"prefix": prefix, **now})
    for statement in dialect.clear:  # (the staged rows would otherwise stay until the next)
        await conn.exec_driver_sql(statement)


async def _one_per_wallet(conn: AsyncConnection) -> None:
    """Identities linked into one wallet and present together: keep the row
    ``payouts._one_per_wallet`` pays (the best award, the first of equals) at the place of the
    wallet's first row, and drop the others. Only the wallets present twice are read."""
    result = await conn.execute(_SHARED)
    rows = [tuple(row) for row in result.fetchall()]
    first: dict[int, int] = {}
    best: dict[int, tuple[int, int, int]] = {}  # user_id -> (k, points, xp)
    for k, user_id, points, xp in rows:
        first.setdefault(user_id, k)
        kept = best.get(user_id)
        if kept is None or (points, xp) > (kept[1], kept[2]):
            best[user_id] = (k, points, xp)
    kept_ks = {k for k, _, _ in best.values()}
    dropped = [{"k": k} for k, *_ in rows if k not in kept_ks]
    if dropped:  # (a wallet present twice: never empty, but an empty list would run it once)
        await conn.execute(_DROP_ROW, dropped)
    moves = [
        {"to": first[user_id], "k": k} for user_id, (k, _, _) in best.items() if first[user_id] != k
    ]
    if moves:  # (the wallet's first row was dropped just above: its place is free)
        await conn.execute(_MOVE_ROW, moves)


async def _level_ups(
    conn: AsyncConnection,
    rows: _Rows,
    tick_ref: str,
    levels: list[int],
) -> None:
    """The viewers whose XP reaches their next level are paid by ``_Rows.pay`` (level-ups,
    their rewards and events, the cap on both), and the result is written back to their rows.
    ``levels``: the levels of the viewers given XP."""
    await conn.execute(
        _LEVELS, [{"level": level, "next_at": rows.next_level_at(level)} for level in levels]
    )
    levelling = [tuple(row) for row in (await conn.execute(_LEVELLING)).fetchall()]
    if not levelling:
        return
    results: list[dict[str, int]] = []
    for k, platform, puid, points, xp, user_id, *wallet in levelling:
        account = Account(user_id, *wallet)
        rows.pay(account, points, xp, f"{tick_ref}:{platform}:{puid}")
        # Its earn and XP rows are written with everyone's, in pay order, from payout_rows.
        rows.earned.clear()
        rows.xp_rows.clear()
        results.append(
            {
                "points": account.points,
                "level": account.level,
                "rewarded": account.rewarded_level,
                "k": k,
            }
        )
    await conn.execute(_LEVELLED, results)
