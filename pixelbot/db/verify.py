"""``pixelbot db verify``: prove the wallets agree with the ledgers (DESIGN.md §3 invariants).

- every wallet's points equal the sum of its ledger and its last ``balance_after``; the same for
  XP; each ledger row's balance is the previous one plus its amount;
- no balance, anywhere in history, is negative;
- each wallet's level is the level after its last XP award; no ledger row outlives its wallet;
- every refund points at exactly one spend of the same person (or of a wallet since joined
  into the refund's one by ``!link``), for exactly its amount, and every failed or cancelled
  queue item that cost points has been refunded;
- linked wallets (``!link``): a joined wallet is empty, names a wallet that exists and was not
  joined itself, and no identity points at it; every link moved points and XP as an ``:out``
  and an ``:in`` row that sum to zero, the ``:in`` row on the wallet the ``:out`` one was
  joined into, and an unlink's row moved nothing.

Before any of that, SQLite's own page check (``integrity.py``; ``full`` for
``integrity_check``): damage is a violation like any other, never a crash, and the ledger checks
are skipped because a damaged file cannot be trusted to answer them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.db import integrity
from pixelbot.db.engine import Database
from pixelbot.db.models import Base
from pixelbot.errors import DatabaseDamaged

__all__ = ["VerifyReport", "Violation", "check_integrity", "verify"]

USERS: Table = Base.metadata.tables["users"]
TRANSACTIONS: Table = Base.metadata.tables["transactions"]
XP_TRANSACTIONS: Table = Base.metadata.tables["xp_transactions"]
IDENTITIES: Table = Base.metadata.tables["identities"]
QUEUE_ITEMS: Table = Base.metadata.tables["queue_items"]


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str
    user_id: int | None = None


@dataclass
class VerifyReport:
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "violations": [asdict(v) for v in self.violations],
        }


async def check_integrity(db: Database, *, full: bool = False) -> VerifyReport:
    """SQLite's page check alone (run it before migrations touch a file that may be damaged)."""
    report = VerifyReport()
    for problem in await integrity.damage(db, full=full):
        report.violations.append(Violation("integrity", problem))
    return report


async def verify(db: Database, *, full: bool = False, checked: bool = False) -> VerifyReport:
    """Every check; ``checked``: ``check_integrity`` already passed, don't run it again."""
    report = VerifyReport() if checked else await check_integrity(db, full=full)
    if not report.ok:
        return report
    try:
        async with db.read() as conn:
            for table in (USERS, TRANSACTIONS, XP_TRANSACTIONS, QUEUE_ITEMS):
                count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                report.counts[table.name] = int(count)
            await _check_ledger(
                conn, report, "points", USERS.c.points, TRANSACTIONS, "balance_after"
            )
            await _check_ledger(conn, report, "xp", USERS.c.xp, XP_TRANSACTIONS, "xp_after")
            await _check_levels(conn, report)
            await _check_orphans(conn, report)
            await _check_refunds(conn, report)
            await _check_queue_refunds(conn, report)
            await _check_merged_wallets(conn, report)
            await _check_link_rows(conn, report, "points", TRANSACTIONS)
            await _check_link_rows(conn, report, "xp", XP_TRANSACTIONS)
    except DatabaseDamaged as exc:  # damage the page check did not reach (quick, not --full)
        report.violations.append(Violation("integrity", str(exc.__cause__ or exc)))
    return report


async def _check_ledger(
    conn: AsyncConnection,
    report: VerifyReport,
    name: str,
    cached: Any,
    ledger: Table,
    after_column: str,
) -> None:
    after = ledger.c[after_column]
    sums = (
        select(ledger.c.user_id, func.sum(ledger.c.amount).label("total"))
        .group_by(ledger.c.user_id)
        .subquery()
    )
    last_id = (
        select(ledger.c.user_id, func.max(ledger.c.id).label("last_id"))
        .group_by(ledger.c.user_id)
        .subquery()
    )
    last = ledger.alias("last")
    rows = await conn.execute(
        select(USERS.c.id, cached, sums.c.total, last.c[after_column])
        .select_from(USERS)
        .outerjoin(sums, sums.c.user_id == USERS.c.id)
        .outerjoin(last_id, last_id.c.user_id == USERS.c.id)
        .outerjoin(last, last.c.id == last_id.c.last_id)
        .where(
            or_(
                cached != func.coalesce(sums.c.total, 0),
                cached != func.coalesce(last.c[after_column], 0),
                cached < 0,
            )
        )
    )
    for user_id, value, total, last_after in rows:
        report.violations.append(
            Violation(
                f"{name}_balance",
                f"wallet has {value} {name}, ledger sums to {total or 0}, "
                f"last {after_column} is {last_after if last_after is not None else 0}",
                user_id,
            )
        )
    previous = func.lag(after).over(partition_by=ledger.c.user_id, order_by=ledger.c.id)
    chain = select(
        ledger.c.id, ledger.c.user_id, ledger.c.amount, after, previous.label("previous")
    ).subquery()
    broken = await conn.execute(
        select(chain).where(
            or_(
                chain.c[after_column] != func.coalesce(chain.c.previous, 0) + chain.c.amount,
                chain.c[after_column] < 0,
            )
        )
    )
    for row in broken:
        report.violations.append(
            Violation(
                f"{name}_chain",
                f"ledger row {row.id}: {after_column} {row[3]} != previous "
                f"{row.previous if row.previous is not None else 0} + amount {row.amount}",
                row.user_id,
            )
        )


async def _check_levels(conn: AsyncConnection, report: VerifyReport) -> None:
    """The cached level equals the level after the last XP award (when there is one)."""
    last_id = (
        select(XP_TRANSACTIONS.c.user_id, func.max(XP_TRANSACTIONS.c.id).label("last_id"))
        .group_by(XP_TRANSACTIONS.c.user_id)
        .subquery()
    )
    rows = await conn.execute(
        select(USERS.c.id, USERS.c.level, XP_TRANSACTIONS.c.level_after)
        .join(last_id, last_id.c.user_id == USERS.c.id)
        .join(XP_TRANSACTIONS, XP_TRANSACTIONS.c.id == last_id.c.last_id)
        .where(USERS.c.level != XP_TRANSACTIONS.c.level_after)
    )
    for user_id, level, level_after in rows:
        report.violations.append(
            Violation("level", f"wallet is level {level}, XP ledger says {level_after}", user_id)
        )


async def _check_orphans(conn: AsyncConnection, report: VerifyReport) -> None:
    """Ledger and identity rows whose wallet is gone (a deleted users row)."""
    for table in (TRANSACTIONS, XP_TRANSACTIONS, IDENTITIES):
        rows = await conn.execute(
            select(table.c.user_id, func.count())
            .select_from(table)
            .outerjoin(USERS, USERS.c.id == table.c.user_id)
            .where(USERS.c.id.is_(None))
            .group_by(table.c.user_id)
        )
        for user_id, count in rows:
            report.violations.append(
                Violation("orphan", f"{count} {table.name} row(s) for a missing wallet", user_id)
            )


async def _check_refunds(conn: AsyncConnection, report: VerifyReport) -> None:
    refund = TRANSACTIONS.alias("refund")
    charge = TRANSACTIONS.alias("charge")
    payer = USERS.alias("payer")  # the charge's wallet: joined into the refunded one, maybe
    # The wallet the refund landed on may itself have been joined into another since (two
    # links in a row): both sides are compared by the wallet they are part of now.
    payee = USERS.alias("payee")
    rows = await conn.execute(
        select(
            refund.c.id,
            refund.c.user_id,
            refund.c.amount,
            refund.c.refund_of,
            charge.c.user_id.label("charge_user"),
            charge.c.amount.label("charge_amount"),
        )
        .select_from(refund)
        .outerjoin(charge, charge.c.ref == refund.c.refund_of)
        .outerjoin(payer, payer.c.id == charge.c.user_id)
        .outerjoin(payee, payee.c.id == refund.c.user_id)
        .where(refund.c.refund_of.is_not(None))
        .where(
            or_(
                charge.c.id.is_(None),
                charge.c.amount >= 0,
                charge.c.kind != "spend",
                refund.c.amount != -charge.c.amount,
                and_(
                    refund.c.user_id != charge.c.user_id,
                    func.coalesce(payee.c.merged_into, refund.c.user_id)
                    != func.coalesce(payer.c.merged_into, charge.c.user_id),
                ),
            )
        )
    )
    for row in rows:
        report.violations.append(
            Violation(
                "refund",
                f"refund row {row.id} of {row.amount} does not match its charge "
                f"{row.refund_of!r} ({row.charge_amount} by user {row.charge_user})",
                row.user_id,
            )
        )


async def _check_queue_refunds(conn: AsyncConnection, report: VerifyReport) -> None:
    rows = await conn.execute(
        select(
            QUEUE_ITEMS.c.id, QUEUE_ITEMS.c.user_id, QUEUE_ITEMS.c.status, QUEUE_ITEMS.c.charge_ref
        )
        .select_from(QUEUE_ITEMS)
        .outerjoin(TRANSACTIONS, TRANSACTIONS.c.refund_of == QUEUE_ITEMS.c.charge_ref)
        .where(
            QUEUE_ITEMS.c.status.in_(["failed", "cancelled"]),
            or_(
                # paid for, but no refund points at the charge
                and_(QUEUE_ITEMS.c.charge_ref.is_not(None), TRANSACTIONS.c.id.is_(None)),
                # said to cost points, but names no charge that could be refunded
                and_(QUEUE_ITEMS.c.charge_ref.is_(None), QUEUE_ITEMS.c.cost > 0),
            ),
        )
    )
    for row in rows:
        report.violations.append(
            Violation(
                "queue_refund",
                f"queue item {row.id} is {row.status} but its charge {row.charge_ref!r} "
                "was never refunded"
                if row.charge_ref is not None
                else f"queue item {row.id} is {row.status}, cost points and names no charge",
                row.user_id,
            )
        )


async def _check_merged_wallets(conn: AsyncConnection, report: VerifyReport) -> None:
    """Wallets joined into another by ``!link``: emptied, pointing at a live wallet, unowned."""
    into = USERS.alias("into")
    rows = await conn.execute(
        select(
            USERS.c.id,
            USERS.c.points,
            USERS.c.xp,
            USERS.c.merged_into,
            into.c.id,
            into.c.merged_into,
        )
        .select_from(USERS)
        .outerjoin(into, into.c.id == USERS.c.merged_into)
        .where(USERS.c.merged_into.is_not(None))
    )
    for user_id, points, xp, merged_into, found, further in rows:
        if points != 0 or xp != 0:
            report.violations.append(
                Violation(
                    "merged_wallet",
                    f"wallet was joined into {merged_into} but still has {points} points "
                    f"and {xp} XP",
                    user_id,
                )
            )
        if found is None or merged_into == user_id or further is not None:
            report.violations.append(
                Violation(
                    "merged_wallet",
                    f"wallet was joined into {merged_into}, which "
                    + (
                        "does not exist"
                        if found is None
                        else "is itself"
                        if merged_into == user_id
                        else f"was joined into {further} in turn"
                    ),
                    user_id,
                )
            )
    owned = await conn.execute(
        select(IDENTITIES.c.user_id, IDENTITIES.c.platform, IDENTITIES.c.platform_user_id)
        .join(USERS, USERS.c.id == IDENTITIES.c.user_id)
        .where(USERS.c.merged_into.is_not(None))
    )
    for user_id, platform, platform_user_id in owned:
        report.violations.append(
            Violation(
                "merged_wallet",
                f"identity {platform}:{platform_user_id} points at a wallet joined into another",
                user_id,
            )
        )


async def _check_link_rows(
    conn: AsyncConnection, report: VerifyReport, name: str, ledger: Table
) -> None:
    """Each link moved what it moved from one wallet to another: an ``:out`` row on a wallet
    that was joined, an ``:in`` row on the wallet it was joined into, summing to zero. Unlink
    rows (points ledger) are zero.

    ``merged_into`` names the FINAL wallet (a later link of the receiving wallet re-points it),
    so the ``:in`` row's wallet is compared by the wallet it is part of now: itself, or the one
    it was joined into in turn."""
    kind = ledger.c.kind == "link" if "kind" in ledger.c else ledger.c.ref.like("link:%")
    rows = await conn.execute(
        select(
            ledger.c.id,
            ledger.c.user_id,
            ledger.c.amount,
            ledger.c.reason,
            ledger.c.ref,
            USERS.c.merged_into,
        )
        .join(USERS, USERS.c.id == ledger.c.user_id)
        .where(kind)
        .order_by(ledger.c.id)
    )
    pairs: dict[str, dict[str, tuple[int, int, int | None]]] = defaultdict(dict)
    for row_id, user_id, amount, reason, ref, merged_into in rows:
        if reason == "unlink":
            if amount != 0:
                report.violations.append(
                    Violation(f"{name}_link", f"unlink row {row_id} moved {amount}", user_id)
                )
            continue
        base, _, side = ref.rpartition(":")
        pairs[base][side] = (user_id, amount, merged_into)
    for base, sides in pairs.items():
        out, into = sides.get("out"), sides.get("in")
        if out is None or into is None:
            report.violations.append(
                Violation(f"{name}_link", f"{base} has no matching out and in rows", None)
            )
            continue
        if out[1] + into[1] != 0 or out[1] > 0:
            report.violations.append(
                Violation(
                    f"{name}_link",
                    f"{base} moved {out[1]} out and {into[1]} in",
                    into[0],
                )
            )
        if out[2] is None or out[0] == into[0]:
            report.violations.append(
                Violation(
                    f"{name}_link",
                    f"{base} moved {name} out of wallet {out[0]}, not joined into another",
                    out[0],
                )
            )
            continue
        landed = into[2] if into[2] is not None else into[0]
        if landed != out[2]:
            report.violations.append(
                Violation(
                    f"{name}_link",
                    f"{base} moved {name} out of wallet {out[0]}, which was joined into "
                    f"{out[2]}, but in to wallet {into[0]}"
                    + (f" (part of wallet {landed})" if landed != into[0] else ""),
                    into[0],
                )
            )
