"""The writer runs each operation by the kind it declares, checked at ``submit``, and counts
every kind it runs: ``batches``/``operations`` only the Batch runs (what the benchmarks'
``mean_batch`` means), ``set_based_runs`` and ``rows_runs`` the runs alone. Real writer,
real database, both backends."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from pixelbot.config import Config
from pixelbot.db.engine import Database
from pixelbot.economy.batch import Batch, Needs
from pixelbot.economy.payouts import Award, Payouts
from pixelbot.economy.writer import (
    Operation,
    RowsOperation,
    RunKind,
    SetBasedOperation,
    Writer,
    run_kind,
)
from pixelbot.testing import balance_of, make_config, open_test_engine, viewer

ALICE, BOB = viewer("alice"), viewer("bob")
REDEEMS: dict[str, Any] = {"tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}}}


@pytest.fixture
def config(db_path: Path) -> Config:
    return make_config(db_path, economy={"starting_points": 10}, redeems=REDEEMS)


class _CountEvents(RowsOperation[int]):
    """A real RowsOperation: a statement on the writer's own connection."""

    def write_rows(self, conn: Connection, db: Database, now: datetime) -> int:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def counters(writer: Writer) -> tuple[int, int, int, int]:
    return writer.batches, writer.operations, writer.set_based_runs, writer.rows_runs


def delta(after: tuple[int, ...], before: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(after, before, strict=True))


async def test_every_kind_is_counted_and_batches_count_only_batches(config: Config) -> None:
    async with open_test_engine(config) as engine:
        writer = engine.writer
        before = counters(writer)
        await asyncio.gather(
            *(engine.ledger.grant(who, 5, reason="bonus") for who in (ALICE, BOB, ALICE))
        )
        batch_runs = delta(counters(writer), before)
        assert batch_runs[1] == 3 and batch_runs[0] >= 1 and batch_runs[2:] == (0, 0)

        before = counters(writer)
        paid = await Payouts(writer).pay_tick(1, 1, [Award(ALICE, 4, 0)])
        assert paid.points == 4
        assert delta(counters(writer), before) == (0, 0, 1, 0)  # a payout tick is not a batch

        before = counters(writer)
        assert await writer.submit(_CountEvents()) >= 0
        assert delta(counters(writer), before) == (0, 0, 0, 1)

        # the queue's claims are RowsOperations where they go through the writer (a SQLite
        # file); on a database other bots share they run in a transaction of their own
        before = counters(writer)
        assert await engine.queue.claim("tts") is None
        claims_through_writer = 0 if engine.db.shared else 1
        assert delta(counters(writer), before) == (0, 0, 0, claims_through_writer)
        assert await balance_of(engine, ALICE) == 10 + 5 + 5 + 4


class _DuckSetBased:
    """What the writer used to run alone just for having a ``write`` method."""

    async def write(self, conn: AsyncConnection, db: Database, now: Any) -> int:
        raise AssertionError("must never run")


class _DuckRows:
    def write_rows(self, conn: Connection, db: Database, now: datetime) -> int:
        raise AssertionError("must never run")


class _SetBasedAndBatch(SetBasedOperation[int]):
    async def write(self, conn: AsyncConnection, db: Database, now: Any) -> int:
        raise AssertionError("must never run")

    def needs(self, needs: Needs) -> None:
        raise AssertionError("must never run")

    def apply(self, batch: Batch) -> int:
        raise AssertionError("must never run")


class _Both(SetBasedOperation[int], RowsOperation[int]):
    async def write(self, conn: AsyncConnection, db: Database, now: Any) -> int:
        raise AssertionError("must never run")

    def write_rows(self, conn: Connection, db: Database, now: datetime) -> int:
        raise AssertionError("must never run")


class _HalfOperation(Operation[int]):
    """Subclasses the protocol but defines only ``apply``: the protocol's empty ``needs``
    stub must not count as its own (it would declare nothing, then fail when applied)."""

    def apply(self, batch: Batch) -> int:
        raise AssertionError("must never run")


@pytest.mark.parametrize(
    ("op", "says"),
    [
        (_DuckSetBased(), "_DuckSetBased is no kind"),
        (_DuckRows(), "_DuckRows is no kind"),
        (_SetBasedAndBatch(), "_SetBasedAndBatch is set_based and batch"),
        (_Both(), "_Both is set_based and rows"),
        (_HalfOperation(), "_HalfOperation is no kind"),
    ],
    ids=["write-only", "write_rows-only", "set-based-with-apply", "two-bases", "protocol-stub"],
)
async def test_an_operation_of_no_single_declared_kind_is_refused_at_submit(
    config: Config, op: object, says: str
) -> None:
    async with open_test_engine(config) as engine:
        before = counters(engine.writer)
        with pytest.raises(TypeError, match=says):
            await engine.writer.submit(op)  # type: ignore[arg-type]  # (what the check is for)
        with pytest.raises(TypeError, match=says):
            engine.writer.enqueue(op)  # type: ignore[arg-type]
        # nothing was queued, and the writer goes on
        await engine.ledger.grant(ALICE, 1, reason="bonus")
        assert delta(counters(engine.writer), before) == (1, 1, 0, 0)
        assert await balance_of(engine, ALICE) == 11


@pytest.mark.no_database
def test_the_bots_own_operations_declare_their_kinds() -> None:
    from pixelbot.economy.ledger import SPEND, _Post
    from pixelbot.economy.payouts import _PayTick
    from pixelbot.economy.queue import _Claim, _Renew

    assert run_kind(_Post(ALICE, 1, "x", "spend:1", None, SPEND)) is RunKind.BATCH
    assert run_kind(_Claim.__new__(_Claim)) is RunKind.ROWS
    assert run_kind(_Renew.__new__(_Renew)) is RunKind.ROWS
    assert run_kind(_PayTick.__new__(_PayTick)) is RunKind.SET_BASED
