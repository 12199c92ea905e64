"""The watch-time payout leg of ``scripts/bench.py --payout``.

One tick pays ``viewers`` present viewers, half of them new to the database (their wallets
are created in the same operation), through ``Payouts.pay_tick``: one writer operation, one
transaction. For comparison the same awards go through the per-viewer path (one ledger grant
and one XP award per viewer, each its own writer operation, all submitted at once so the
writer still groups them) into a fresh copy of the same database. On PostgreSQL
(``--database``) the two databases are seeded each with the same first tick instead of copied.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from pixelbot.app import Engine
from pixelbot.app.runtime_tuning import tune_after_start
from pixelbot.clock import FakeClock, utc
from pixelbot.config import Config
from pixelbot.db.verify import verify
from pixelbot.economy.batch import EARN, Batch, Needs
from pixelbot.economy.payouts import Award, Payouts
from pixelbot.events import Viewer

__all__ = ["run_payout_bench"]

START = utc(2026, 1, 1, 20, 0, 0)


def _viewer(n: int) -> Viewer:
    return Viewer("twitch", f"u{n}", f"viewer{n}", f"Viewer{n}")


class _OneAward:
    """The per-viewer path: one viewer's points and XP as its own writer operation."""

    def __init__(self, award: Award, ref: str) -> None:
        self.award, self.ref = award, ref

    def needs(self, needs: Needs) -> None:
        needs.viewer(self.award.viewer)
        needs.tx_refs.add(self.ref)

    def apply(self, batch: Batch) -> None:
        if batch.has_tx_ref(self.ref):
            return
        account = batch.account_for(self.award.viewer)
        batch.credit_up_to_limit(
            account, self.award.points, kind=EARN, reason="watch", ref=self.ref
        )
        batch.add_xp(account, self.award.xp, reason="watch", ref=self.ref)


def _config(url: str) -> Config:
    return Config.model_validate({"database": {"url": url}})


def _sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _seed(url: str, known: int) -> None:
    async with Engine.open(_config(url), FakeClock(START)) as engine:  # the known half
        await Payouts(engine.writer).pay_tick(1, 1, [Award(_viewer(n), 1, 1) for n in range(known)])


async def run_payout_bench(
    folder: Path, viewers: int, databases: tuple[str, str] | None = None
) -> dict[str, Any]:
    """``databases``: the URLs of two empty databases (set-based, per-viewer) to use instead
    of SQLite files in ``folder``."""
    known = viewers // 2
    if databases is None:
        await _seed(_sqlite(folder / "seed.db"), known)
        for name in ("set.db", "per_viewer.db"):
            shutil.copyfile(folder / "seed.db", folder / name)
        set_url, per_viewer_url = _sqlite(folder / "set.db"), _sqlite(folder / "per_viewer.db")
    else:
        set_url, per_viewer_url = databases
        for url in databases:
            await _seed(url, known)
    awards = [Award(_viewer(n), 5, 1) for n in range(viewers)]

    async with Engine.open(_config(set_url), FakeClock(START)) as engine:
        tune_after_start()  # what the bot does once started (as the chat bench does)
        started, cpu = time.perf_counter(), time.process_time()
        paid = await Payouts(engine.writer).pay_tick(1, 2, awards)
        set_seconds = time.perf_counter() - started
        set_cpu = time.process_time() - cpu
        set_ok = (await verify(engine.db)).ok

    async with Engine.open(_config(per_viewer_url), FakeClock(START)) as engine:
        tune_after_start()
        writer = engine.writer
        started, cpu = time.perf_counter(), time.process_time()
        futures = [writer.enqueue(_OneAward(a, f"each:2:{n}")) for n, a in enumerate(awards)]
        await asyncio.gather(*futures)
        per_viewer_seconds = time.perf_counter() - started
        per_viewer_cpu = time.process_time() - cpu
        per_viewer_ok = (await verify(engine.db)).ok

    return {
        "benchmark": "watch-time payout",
        "database": "sqlite" if databases is None else "postgresql",
        "viewers": viewers,
        "new_viewers": viewers - known,
        "set_based": {
            "seconds": round(set_seconds, 3),
            "cpu_seconds": round(set_cpu, 3),  # (all threads: the loop's and SQLite's)
            "paid": paid.viewers,
            "ledger_rows": paid.viewers,
            "xp_rows": paid.viewers,
            "verify_ok": set_ok,
        },
        "per_viewer": {
            "seconds": round(per_viewer_seconds, 3),
            "cpu_seconds": round(per_viewer_cpu, 3),
            "verify_ok": per_viewer_ok,
        },
        "ratio_per_viewer_to_set": round(per_viewer_seconds / set_seconds, 2),
        "goals": {
            "at_most_2_s": set_seconds <= 2.0,
            "at_most_a_20th_of_per_viewer": set_seconds * 20 <= per_viewer_seconds,
        },
    }
