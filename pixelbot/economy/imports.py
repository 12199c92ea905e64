"""Bringing balances in from another bot: one ledgered ``import`` grant per viewer.

Each row of the export (``import_formats``) is matched to a wallet:

- by platform user id when the file has one: that viewer's wallet, or a new one (as if they
  had just chatted; a later rename on the platform keeps the wallet);
- else by login, among the viewers this bot has already seen on that platform. A login that
  is unknown (or shared by two wallets) is reported and left out: without an id, a new wallet
  could later be split from the real viewer's.

Every grant goes through the writer like any other (the ledger, ``db verify``), with the ref
``import:<source>:<platform>:<id or login:login>``: running the same import again finds the
refs and changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import func, select

from pixelbot.db.engine import Database
from pixelbot.economy.import_formats import BadRow, ImportRow, ParsedExport
from pixelbot.economy.ledger import Ledger, Wallet
from pixelbot.economy.store import IDENTITIES
from pixelbot.errors import EconomyError
from pixelbot.events import Viewer

__all__ = ["ImportReport", "import_balances"]

CHUNK = 200  # grants submitted together: the writer commits them as a group


@dataclass
class ImportReport:
    source: str
    by_id: int = 0  # matched an existing viewer by platform id
    new: int = 0  # a new wallet, created from the platform id in the file
    by_login: int = 0  # matched an existing viewer by login (no id in the file)
    points: int = 0
    already: int = 0  # imported by an earlier run: nothing changed
    zero: int = 0  # nothing to bring in
    unmatched: list[ImportRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)  # unreadable rows and refused grants

    @property
    def imported(self) -> int:
        return self.by_id + self.new + self.by_login


async def import_balances(
    db: Database,
    ledger: Ledger,
    parsed: ParsedExport,
    *,
    source: str,
    platform: str,
    actor: str = "import",
) -> ImportReport:
    report = ImportReport(source, bad=list(parsed.bad))
    rows = [row for row in parsed.rows if row.points > 0]
    report.zero = len(parsed.rows) - len(rows)
    known_ids = await _known_ids(db, platform, [r.platform_user_id for r in rows])
    logins = await _users_by_login(db, platform, [r.login for r in rows if not r.platform_user_id])
    planned: list[tuple[ImportRow, Wallet, str, str]] = []
    for row in rows:
        if row.platform_user_id is not None:
            known = known_ids.get(row.platform_user_id)
            wallet: Wallet = (
                known
                if known is not None  # (by user id: the export's older name renames nobody)
                else Viewer(platform, row.platform_user_id, row.login, row.display_name)
            )
            how = "by_id" if known is not None else "new"
            ref = f"import:{source}:{platform}:{row.platform_user_id}"
        else:
            found = logins.get(row.login, [])
            if len(found) != 1:
                report.unmatched.append(row)
                continue
            # Keyed by the identity found, like a row that has the id: the same viewer listed
            # with and without an id (in one file, or in two exports) is granted once.
            user_id, platform_user_id = found[0]
            wallet, how, ref = user_id, "by_login", f"import:{source}:{platform}:{platform_user_id}"
        planned.append((row, wallet, how, ref))
    for start in range(0, len(planned), CHUNK):
        part = planned[start : start + CHUNK]
        results = await asyncio.gather(
            *(
                ledger.grant(wallet, row.points, reason=f"import:{source}", ref=ref, actor=actor)
                for row, wallet, _, ref in part
            ),
            return_exceptions=True,
        )
        for (row, _, how, _), result in zip(part, results, strict=True):
            if isinstance(result, EconomyError):  # e.g. above economy.max_balance
                report.bad.append(BadRow(row.line, f"{row.login}: {result}"))
            elif isinstance(result, BaseException):
                raise result
            elif result.duplicate:
                report.already += 1
            else:
                setattr(report, how, getattr(report, how) + 1)
                report.points += result.amount
    report.bad.sort(key=lambda bad: bad.line)
    return report


async def _known_ids(db: Database, platform: str, ids: list[str | None]) -> dict[str, int]:
    wanted = [user_id for user_id in ids if user_id]
    if not wanted:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(IDENTITIES.c.platform_user_id, IDENTITIES.c.user_id).where(
                IDENTITIES.c.platform == platform,
                db.member_of(IDENTITIES.c.platform_user_id, wanted),
            )
        )
        return {str(found): int(user_id) for found, user_id in rows}


async def _users_by_login(
    db: Database, platform: str, logins: list[str]
) -> dict[str, list[tuple[int, str]]]:
    """The (wallet, platform user id) of each identity with one of ``logins``."""
    if not logins:
        return {}
    found: dict[str, list[tuple[int, str]]] = {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                func.lower(IDENTITIES.c.login), IDENTITIES.c.user_id, IDENTITIES.c.platform_user_id
            )
            .where(
                IDENTITIES.c.platform == platform,
                db.member_of(func.lower(IDENTITIES.c.login), logins),
            )
            .distinct()
        )
        for login, user_id, platform_user_id in rows:
            found.setdefault(str(login), []).append((int(user_id), str(platform_user_id)))
    return found
