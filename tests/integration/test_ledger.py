"""The points ledger on a real SQLite file: grant, spend, transfer, adjust, refund.

Every test checks what a streamer would see: balances, the ledger rows behind them, and the
numbers carried by a refusal. ``verify`` (the ``db verify`` command) must agree at the end.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from pixelbot.app import Engine
from pixelbot.clock import FakeClock, utc
from pixelbot.db.models import EventRow, Identity, Transaction, User
from pixelbot.db.verify import verify
from pixelbot.economy.ledger import LedgerEntry, Transfer
from pixelbot.errors import (
    AmbiguousViewer,
    BalanceLimitExceeded,
    EconomyError,
    InsufficientFunds,
    InvalidAmount,
    NotRefundable,
    SelfTransfer,
    UnknownCharge,
    UnknownViewer,
)
from pixelbot.events import Viewer
from pixelbot.testing import make_config, open_test_engine, viewer

TRANSACTIONS: Table = Transaction.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
IDENTITIES: Table = Identity.__table__  # type: ignore[assignment]

ALICE = viewer("alice")
BOB = viewer("bob")


# ----------------------------------------------------------------------------------- helpers


async def balance(engine: Engine, who: Viewer) -> int:
    user_id = await engine.wallets.find(who.login, who.platform)
    return (await engine.wallets.summary(user_id)).points


async def ledger_rows(engine: Engine, who: Viewer | None = None) -> list[Any]:
    query = select(TRANSACTIONS).order_by(TRANSACTIONS.c.id)
    if who is not None:
        query = query.where(TRANSACTIONS.c.user_id == await engine.wallets.find(who.login))
    async with engine.db.read() as conn:
        return list((await conn.execute(query)).all())


async def row_count(engine: Engine, table: Table) -> int:
    async with engine.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def row_counts(engine: Engine) -> dict[str, int]:
    return {table.name: await row_count(engine, table) for table in (TRANSACTIONS, EVENTS, USERS)}


async def assert_verified(engine: Engine) -> None:
    report = await verify(engine.db)
    assert report.violations == []
    assert report.ok


# ------------------------------------------------------------------------------- happy paths


async def test_grant_credits_and_records_a_ledger_row(engine: Engine) -> None:
    entry = await engine.ledger.grant(ALICE, 100, reason="bonus", ref="g-1", actor="mod_max")

    assert entry == LedgerEntry(entry.user_id, 100, 100, "g-1", duplicate=False)
    assert await balance(engine, ALICE) == 100
    [row] = await ledger_rows(engine)
    assert (row.user_id, row.amount, row.balance_after) == (entry.user_id, 100, 100)
    assert (row.reason, row.ref, row.actor, row.refund_of) == ("bonus", "g-1", "mod_max", None)
    await assert_verified(engine)


async def test_grant_without_ref_gets_a_unique_one(engine: Engine) -> None:
    first = await engine.ledger.grant(ALICE, 10, reason="bonus")
    second = await engine.ledger.grant(ALICE, 10, reason="bonus")

    assert first.ref != second.ref
    assert second.balance == 20
    assert [row.ref for row in await ledger_rows(engine)] == [first.ref, second.ref]


async def test_spend_debits_and_records_a_negative_row(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    entry = await engine.ledger.spend(ALICE, 30, reason="redeem:tts", ref="s-1", actor="alice")

    assert (entry.amount, entry.balance, entry.ref, entry.duplicate) == (-30, 70, "s-1", False)
    assert await balance(engine, ALICE) == 70
    row = (await ledger_rows(engine))[-1]
    assert (row.amount, row.balance_after, row.reason, row.ref, row.actor) == (
        -30,
        70,
        "redeem:tts",
        "s-1",
        "alice",
    )
    await assert_verified(engine)


async def test_spend_of_the_whole_balance_leaves_zero(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 42, reason="bonus")
    entry = await engine.ledger.spend(ALICE, 42, reason="redeem")
    assert entry.balance == 0
    assert await balance(engine, ALICE) == 0


async def test_transfer_moves_points_with_two_rows(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    result = await engine.ledger.transfer(ALICE, BOB, 40, ref="t-1")

    assert isinstance(result, Transfer)
    assert (result.sent.amount, result.sent.balance, result.sent.ref) == (-40, 60, "t-1:out")
    assert (result.received.amount, result.received.balance, result.received.ref) == (
        40,
        40,
        "t-1:in",
    )
    assert await balance(engine, ALICE) == 60
    assert await balance(engine, BOB) == 40
    out, into = (await ledger_rows(engine))[-2:]
    assert (out.amount, out.balance_after, out.reason, out.ref) == (
        -40,
        60,
        "transfer_out",
        "t-1:out",
    )
    assert (into.amount, into.balance_after, into.reason, into.ref) == (
        40,
        40,
        "transfer_in",
        "t-1:in",
    )
    assert out.user_id == result.sent.user_id != into.user_id == result.received.user_id
    await assert_verified(engine)


async def test_adjust_either_way_records_the_moderator(engine: Engine) -> None:
    up = await engine.ledger.adjust(ALICE, 25, actor="mod_max", ref="a-1")
    down = await engine.ledger.adjust(ALICE, -10, actor="mod_max", reason="typo", ref="a-2")

    assert (up.amount, up.balance) == (25, 25)
    assert (down.amount, down.balance) == (-10, 15)
    rows = await ledger_rows(engine)
    assert [(r.amount, r.balance_after, r.reason, r.ref, r.actor) for r in rows] == [
        (25, 25, "adjust", "a-1", "mod_max"),
        (-10, 15, "typo", "a-2", "mod_max"),
    ]
    await assert_verified(engine)


async def test_adjust_cannot_take_a_balance_below_zero(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 10, reason="bonus")
    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.adjust(ALICE, -11, actor="mod_max")
    assert (refused.value.balance, refused.value.cost, refused.value.missing) == (10, 11, 1)
    assert await balance(engine, ALICE) == 10


async def test_refund_returns_a_charge_once_pointing_at_it(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    await engine.ledger.spend(ALICE, 30, reason="redeem:tts", ref="charge-1")

    refund = await engine.ledger.refund("charge-1", reason="tts_failed", actor="queue")

    assert refund is not None
    assert (refund.amount, refund.balance, refund.ref) == (30, 100, "refund:charge-1")
    row = (await ledger_rows(engine))[-1]
    assert (row.amount, row.balance_after, row.reason, row.actor, row.refund_of) == (
        30,
        100,
        "tts_failed",
        "queue",
        "charge-1",
    )
    before = await row_counts(engine)
    assert await engine.ledger.refund("charge-1") is None
    assert await row_counts(engine) == before
    assert await balance(engine, ALICE) == 100
    await assert_verified(engine)


async def test_refund_of_an_unknown_ref_is_refused(engine: Engine) -> None:
    with pytest.raises(UnknownCharge) as refused:
        await engine.ledger.refund("no-such-charge")
    assert refused.value.ref == "no-such-charge"
    assert await row_count(engine, TRANSACTIONS) == 0


async def test_refund_of_a_grant_is_refused(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 50, reason="bonus", ref="g-1")
    with pytest.raises(NotRefundable):
        await engine.ledger.refund("g-1")
    assert await balance(engine, ALICE) == 50


async def test_wallet_by_user_id(engine: Engine) -> None:
    entry = await engine.ledger.grant(ALICE, 10, reason="bonus")
    again = await engine.ledger.grant(entry.user_id, 5, reason="bonus")
    assert (again.user_id, again.balance) == (entry.user_id, 15)

    with pytest.raises(UnknownViewer):
        await engine.ledger.spend(999, 1, reason="redeem")


async def test_first_sight_creates_one_wallet_per_identity(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 10, reason="bonus")
    await engine.ledger.grant(viewer("alice", display_name="ALICE"), 10, reason="bonus")
    await engine.ledger.grant(viewer("alice", platform="discord"), 10, reason="bonus")

    assert await row_count(engine, USERS) == 2  # twitch alice (twice) and discord alice
    assert await balance(engine, ALICE) == 20


# ---------------------------------------------------------------------------------- refusals


async def test_insufficient_funds_carries_the_numbers_and_writes_nothing(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 50, reason="bonus")
    before = await row_counts(engine)

    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.spend(ALICE, 80, reason="redeem:tts")

    assert (refused.value.balance, refused.value.cost, refused.value.missing) == (50, 80, 30)
    assert "30 more" in str(refused.value)
    assert await row_counts(engine) == before
    assert await balance(engine, ALICE) == 50


async def test_transfer_short_of_funds_changes_neither_wallet(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 10, reason="bonus")
    await engine.ledger.grant(BOB, 5, reason="bonus")
    before = await row_counts(engine)

    with pytest.raises(InsufficientFunds) as refused:
        await engine.ledger.transfer(ALICE, BOB, 11)

    assert (refused.value.balance, refused.value.cost, refused.value.missing) == (10, 11, 1)
    assert await row_counts(engine) == before
    assert (await balance(engine, ALICE), await balance(engine, BOB)) == (10, 5)


async def test_max_balance_refuses_grants_and_adjusts_above_it(
    db_path: Path, clock: FakeClock
) -> None:
    config = make_config(db_path, economy={"max_balance": 1000})
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 900, reason="bonus")
        before = await row_counts(engine)

        with pytest.raises(BalanceLimitExceeded) as refused:
            await engine.ledger.grant(ALICE, 200, reason="bonus")
        assert (refused.value.balance, refused.value.amount, refused.value.limit) == (
            900,
            200,
            1000,
        )

        with pytest.raises(BalanceLimitExceeded):
            await engine.ledger.adjust(ALICE, 101, actor="mod_max")

        assert await row_counts(engine) == before
        assert (await engine.ledger.grant(ALICE, 100, reason="bonus")).balance == 1000
        await assert_verified(engine)


async def test_max_balance_refuses_a_transfer_into_a_full_wallet(
    db_path: Path, clock: FakeClock
) -> None:
    config = make_config(db_path, economy={"max_balance": 1000})
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 500, reason="bonus")
        await engine.ledger.grant(BOB, 990, reason="bonus")
        before = await row_counts(engine)

        with pytest.raises(BalanceLimitExceeded) as refused:
            await engine.ledger.transfer(ALICE, BOB, 20)

        assert (refused.value.balance, refused.value.amount, refused.value.limit) == (990, 20, 1000)
        assert await row_counts(engine) == before
        assert (await balance(engine, ALICE), await balance(engine, BOB)) == (500, 990)
        await assert_verified(engine)


async def test_refund_restores_a_charge_even_above_max_balance(
    db_path: Path, clock: FakeClock
) -> None:
    config = make_config(db_path, economy={"max_balance": 1000})
    async with open_test_engine(config, clock) as engine:
        await engine.ledger.grant(ALICE, 1000, reason="bonus")
        await engine.ledger.spend(ALICE, 300, reason="redeem", ref="charge-1")
        await engine.ledger.grant(ALICE, 300, reason="bonus")

        refund = await engine.ledger.refund("charge-1")

        assert refund is not None and refund.balance == 1300
        assert await balance(engine, ALICE) == 1300
        await assert_verified(engine)


async def test_transfer_to_self_is_refused(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    before = await row_counts(engine)
    renamed_alice = viewer("alice", display_name="Alice_Renamed")

    for receiver in (ALICE, renamed_alice):
        with pytest.raises(SelfTransfer) as refused:
            await engine.ledger.transfer(ALICE, receiver, 10)
        assert refused.value.user_id == await engine.wallets.find("alice")

    with pytest.raises(SelfTransfer):
        await engine.ledger.transfer(ALICE, await engine.wallets.find("alice"), 10)
    assert await row_counts(engine) == before
    assert await balance(engine, ALICE) == 100


@pytest.mark.parametrize("amount", [0, -5, 2.5, True])
@pytest.mark.parametrize("operation", ["grant", "spend", "transfer"])
async def test_invalid_amounts_are_refused(engine: Engine, operation: str, amount: Any) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    before = await row_counts(engine)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "grant": lambda: engine.ledger.grant(ALICE, amount, reason="bonus"),
        "spend": lambda: engine.ledger.spend(ALICE, amount, reason="redeem"),
        "transfer": lambda: engine.ledger.transfer(ALICE, BOB, amount),
    }

    with pytest.raises(InvalidAmount) as refused:
        await calls[operation]()

    assert refused.value.amount == amount
    assert await row_counts(engine) == before
    assert await balance(engine, ALICE) == 100


@pytest.mark.parametrize("delta", [0, 1.5, False])
async def test_adjust_by_nothing_is_refused(engine: Engine, delta: Any) -> None:
    with pytest.raises(InvalidAmount):
        await engine.ledger.adjust(ALICE, delta, actor="mod_max")
    assert await row_count(engine, TRANSACTIONS) == 0


# ------------------------------------------------------------------------------- idempotency


async def test_same_ref_twice_changes_nothing_the_second_time(engine: Engine) -> None:
    await engine.ledger.grant(BOB, 100, reason="bonus")
    calls: list[Callable[[], Awaitable[LedgerEntry | Transfer]]] = [
        lambda: engine.ledger.grant(ALICE, 100, reason="bonus", ref="g"),
        lambda: engine.ledger.spend(ALICE, 30, reason="redeem", ref="s"),
        lambda: engine.ledger.adjust(ALICE, -5, actor="mod_max", ref="a"),
        lambda: engine.ledger.transfer(BOB, ALICE, 20, ref="t"),
    ]
    for call in calls:
        first = await call()
        rows = await row_counts(engine)
        balances = (await balance(engine, ALICE), await balance(engine, BOB))

        second = await call()

        entries = [second.sent, second.received] if isinstance(second, Transfer) else [second]
        assert all(entry.duplicate for entry in entries)
        assert all(entry.amount == 0 for entry in entries)
        first_entries = [first.sent, first.received] if isinstance(first, Transfer) else [first]
        assert [e.balance for e in entries] == [e.balance for e in first_entries]
        assert await row_counts(engine) == rows
        assert (await balance(engine, ALICE), await balance(engine, BOB)) == balances

    assert [row.ref for row in await ledger_rows(engine, ALICE)] == ["g", "s", "a", "t:in"]
    assert (await balance(engine, ALICE), await balance(engine, BOB)) == (85, 80)
    await assert_verified(engine)


async def test_same_ref_submitted_concurrently_pays_once(engine: Engine) -> None:
    results = await asyncio.gather(
        *(engine.ledger.grant(ALICE, 100, reason="bonus", ref="once") for _ in range(20))
    )

    assert [entry.duplicate for entry in results].count(False) == 1
    assert {entry.balance for entry in results} == {100}
    assert await balance(engine, ALICE) == 100
    assert len(await ledger_rows(engine)) == 1


async def test_a_refused_spend_does_not_burn_its_ref(engine: Engine) -> None:
    with pytest.raises(InsufficientFunds):
        await engine.ledger.spend(ALICE, 10, reason="redeem", ref="retry-me")
    await engine.ledger.grant(ALICE, 10, reason="bonus")

    entry = await engine.ledger.spend(ALICE, 10, reason="redeem", ref="retry-me")

    assert (entry.duplicate, entry.balance) == (False, 0)


# ------------------------------------------------------------------------------- concurrency


async def test_a_thousand_concurrent_spends_never_overspend(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 2500, reason="bonus")
    cost = 7

    results = await asyncio.gather(
        *(engine.ledger.spend(ALICE, cost, reason="redeem") for _ in range(1000)),
        return_exceptions=True,
    )

    successes = [r for r in results if isinstance(r, LedgerEntry)]
    refusals = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(successes) == 2500 // cost == 357
    assert len(refusals) == 1000 - 357
    assert all(r.balance == 2500 - cost * 357 and r.cost == cost for r in refusals)
    assert sorted(entry.balance for entry in successes) == list(range(2500 - 357 * cost, 2500, 7))
    assert await balance(engine, ALICE) == 2500 - cost * len(successes) == 1
    assert len(await ledger_rows(engine)) == 1 + 357
    await assert_verified(engine)


async def test_concurrent_transfers_in_a_ring_conserve_points(engine: Engine) -> None:
    ring = [viewer(f"ring{i}") for i in range(5)]
    for who in ring:
        await engine.ledger.grant(who, 100, reason="bonus")

    results = await asyncio.gather(
        *(engine.ledger.transfer(ring[i % 5], ring[(i + 1) % 5], 1 + i % 13) for i in range(400)),
        return_exceptions=True,
    )

    assert all(isinstance(r, Transfer | InsufficientFunds) for r in results)
    assert sum([await balance(engine, who) for who in ring]) == 500
    await assert_verified(engine)


# ------------------------------------------------------------------------------- known bugs


async def test_refund_right_after_its_spend_in_the_same_batch(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")

    spend, refund = await asyncio.gather(
        engine.ledger.spend(ALICE, 10, reason="redeem", ref="quick"),
        engine.ledger.refund("quick"),
        return_exceptions=True,
    )

    assert isinstance(spend, LedgerEntry)
    assert isinstance(refund, LedgerEntry)
    assert await balance(engine, ALICE) == 100


async def test_a_transfer_cannot_be_refunded_into_new_points(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 100, reason="bonus")
    await engine.ledger.transfer(ALICE, BOB, 40, ref="gift")

    with pytest.raises(EconomyError):
        await engine.ledger.refund("gift:out")

    assert await balance(engine, ALICE) + await balance(engine, BOB) == 100


# ---------------------------------------------------------------------------- property test

CAP = 1000
NAMES = ("ann", "ben", "cal")
WHO = [viewer(name) for name in NAMES]

_who = st.integers(min_value=0, max_value=len(NAMES) - 1)
# Mostly affordable amounts, some invalid ones, some big enough to overdraw or pass the cap.
_amount = st.one_of(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=-3, max_value=0),
    st.integers(min_value=200, max_value=700),
)
_pick = st.integers(min_value=0, max_value=40)
_ops = st.one_of(
    st.tuples(st.just("grant"), _who, _amount),
    st.tuples(st.just("grant"), _who, st.integers(min_value=100, max_value=400)),
    st.tuples(st.just("spend"), _who, _amount),
    st.tuples(st.just("transfer"), _who, _who, _amount),
    st.tuples(st.just("adjust"), _who, st.one_of(_amount, _amount.map(lambda n: -n))),
    st.tuples(st.just("refund"), _pick),
    st.tuples(st.just("replay"), _pick),
)


@dataclass(frozen=True)
class _Done:
    """A past operation that succeeded, which later refunds and replays may refer to."""

    kind: str
    ref: str
    who: int
    amount: int
    to: int = 0


@dataclass
class _Expect:
    error: type[Exception] | None = None
    balances: tuple[int, ...] = ()  # the balances the result reports
    duplicate: bool = False


@dataclass
class _Model:
    """What the ledger must do, in plain Python: the balance of each viewer."""

    balances: list[int] = field(default_factory=lambda: [0] * len(NAMES))
    done: list[_Done] = field(default_factory=list)  # visible to refunds and replays
    staged: list[_Done] = field(default_factory=list)  # from the chunk being planned
    refunded: set[str] = field(default_factory=set)

    def publish(self) -> None:
        self.done += self.staged
        self.staged = []

    def _credit(self, who: int, amount: int) -> type[Exception] | None:
        if self.balances[who] + amount > CAP:
            return BalanceLimitExceeded
        self.balances[who] += amount
        return None

    def _debit(self, who: int, amount: int) -> type[Exception] | None:
        if self.balances[who] < amount:
            return InsufficientFunds
        self.balances[who] -= amount
        return None

    def plan(
        self, op: tuple[Any, ...], ref: str
    ) -> tuple[Callable[[Engine], Awaitable[Any]], _Expect]:
        kind = op[0]
        if kind == "grant":
            _, who, amount = op
            call = _call("grant", who, amount, ref)
            if amount <= 0:
                return call, _Expect(InvalidAmount)
            return call, self._after(self._credit(who, amount), _Done(kind, ref, who, amount))
        if kind == "spend":
            _, who, amount = op
            call = _call("spend", who, amount, ref)
            if amount <= 0:
                return call, _Expect(InvalidAmount)
            return call, self._after(self._debit(who, amount), _Done(kind, ref, who, amount))
        if kind == "adjust":
            _, who, delta = op
            call = _call("adjust", who, delta, ref)
            if delta == 0:
                return call, _Expect(InvalidAmount)
            error = self._credit(who, delta) if delta > 0 else self._debit(who, -delta)
            return call, self._after(error, _Done(kind, ref, who, delta))
        if kind == "transfer":
            _, who, to, amount = op
            call = _call("transfer", who, amount, ref, to)
            if amount <= 0:
                return call, _Expect(InvalidAmount)
            if who == to:
                return call, _Expect(SelfTransfer)
            if self.balances[who] < amount:
                return call, _Expect(InsufficientFunds)
            if self.balances[to] + amount > CAP:
                return call, _Expect(BalanceLimitExceeded)
            self.balances[who] -= amount
            self.balances[to] += amount
            return call, self._after(None, _Done(kind, ref, who, amount, to))
        if kind == "refund":
            return self._plan_refund(op[1])
        return self._plan_replay(op[1])

    def _after(self, error: type[Exception] | None, done: _Done) -> _Expect:
        if error is not None:
            return _Expect(error)
        self.staged.append(done)
        return _Expect(balances=self._reported(done))

    def _reported(self, done: _Done) -> tuple[int, ...]:
        if done.kind == "transfer":
            return (self.balances[done.who], self.balances[done.to])
        return (self.balances[done.who],)

    def _plan_refund(self, pick: int) -> tuple[Callable[[Engine], Awaitable[Any]], _Expect]:
        if not self.done or pick == 0:
            return _refund(f"unknown-{pick}"), _Expect(UnknownCharge)
        # Most refunds name a spend (what refunds are for); the rest any earlier operation.
        spends = [done for done in self.done if done.kind == "spend"]
        pool = spends if spends and pick % 4 else self.done
        charge = pool[pick % len(pool)]
        call = _refund(charge.ref)
        if charge.kind == "transfer":  # its rows are '<ref>:out' and '<ref>:in'
            return call, _Expect(UnknownCharge)
        if charge.kind != "spend":  # grants and adjustments are not charges
            return call, _Expect(NotRefundable)
        taken = charge.amount
        if charge.ref in self.refunded:
            return call, _Expect()  # None: refunded already
        self.refunded.add(charge.ref)
        self.balances[charge.who] += taken  # the cap does not apply to refunds
        return call, _Expect(balances=(self.balances[charge.who],))

    def _plan_replay(self, pick: int) -> tuple[Callable[[Engine], Awaitable[Any]], _Expect]:
        if not self.done:
            return _call("grant", 0, 0, "replay-nothing"), _Expect(InvalidAmount)
        done = self.done[pick % len(self.done)]
        call = _call(done.kind, done.who, done.amount, done.ref, done.to)
        return call, _Expect(balances=self._reported(done), duplicate=True)


def _call(
    kind: str, who: int, amount: int, ref: str, to: int = 0
) -> Callable[[Engine], Awaitable[Any]]:
    def call(engine: Engine) -> Awaitable[Any]:
        ledger = engine.ledger
        if kind == "grant":
            return ledger.grant(WHO[who], amount, reason="bonus", ref=ref)
        if kind == "spend":
            return ledger.spend(WHO[who], amount, reason="redeem", ref=ref)
        if kind == "adjust":
            return ledger.adjust(WHO[who], amount, actor="mod", ref=ref)
        return ledger.transfer(WHO[who], WHO[to], amount, ref=ref)

    return call


def _refund(ref: str) -> Callable[[Engine], Awaitable[Any]]:
    return lambda engine: engine.ledger.refund(ref)


def _check(result: Any, expect: _Expect, op: tuple[Any, ...]) -> None:
    if expect.error is not None:
        assert isinstance(result, expect.error), (op, result)
        return
    assert not isinstance(result, BaseException), (op, result)
    if result is None:
        assert expect.balances == (), (op, result)
        return
    entries = [result.sent, result.received] if isinstance(result, Transfer) else [result]
    assert tuple(entry.balance for entry in entries) == expect.balances, (op, result)
    assert all(entry.duplicate == expect.duplicate for entry in entries), (op, result)


async def _balances_by_login(engine: Engine) -> dict[str, int]:
    async with engine.db.read() as conn:
        rows = await conn.execute(
            select(IDENTITIES.c.login, USERS.c.points).join(
                USERS, USERS.c.id == IDENTITIES.c.user_id
            )
        )
        return {login: points for login, points in rows}


_files = itertools.count()


@pytest.fixture(scope="module")
def property_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledger-property")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    opening=st.lists(
        st.integers(min_value=0, max_value=500), min_size=len(NAMES), max_size=len(NAMES)
    ),
    ops=st.lists(_ops, min_size=1, max_size=40),
    chunk=st.integers(min_value=1, max_value=8),
)
def test_any_sequence_of_operations_matches_the_model(
    property_dir: Path, opening: list[int], ops: list[tuple[Any, ...]], chunk: int
) -> None:
    """Each viewer opens with a grant, then the operations are submitted ``chunk`` at a time
    (gathered, so the writer batches them): the outcome must equal applying them one by one,
    whatever the batching."""
    db_file = property_dir / f"example-{next(_files)}.db"
    ops = [("grant", who, amount) for who, amount in enumerate(opening) if amount] + ops

    async def run() -> None:
        config = make_config(db_file, economy={"max_balance": CAP})
        async with open_test_engine(config, FakeClock(utc(2026, 3, 1, 20))) as engine:
            model = _Model()
            for start in range(0, len(ops), chunk):
                part = ops[start : start + chunk]
                planned = [model.plan(op, f"op-{start + i}") for i, op in enumerate(part)]
                results = await asyncio.gather(
                    *(call(engine) for call, _ in planned), return_exceptions=True
                )
                for op, (_, expect), result in zip(part, planned, results, strict=True):
                    _check(result, expect, op)
                model.publish()

            found = await _balances_by_login(engine)
            expected = {name: model.balances[i] for i, name in enumerate(NAMES)}
            assert {name: found.get(name, 0) for name in NAMES} == expected
            assert set(found) <= set(NAMES)
            await assert_verified(engine)

    asyncio.run(run())


async def test_a_shared_display_name_is_never_guessed(engine: Engine) -> None:
    """Display names are free text: a payment by name must not reach an impersonator."""
    await engine.ledger.grant(viewer("alice_99", display_name="Alice"), 10, reason="bonus")
    await engine.ledger.grant(viewer("mallory", display_name="Alice"), 10, reason="bonus")
    with pytest.raises(AmbiguousViewer):
        await engine.wallets.find("Alice", "twitch")
    assert await engine.wallets.find("alice_99", "twitch") != await engine.wallets.find(
        "mallory", "twitch"
    )


async def test_transfer_of_everything_is_decided_on_the_locked_balance(engine: Engine) -> None:
    await engine.ledger.grant(ALICE, 70, reason="bonus")
    await engine.ledger.grant(BOB, 1, reason="bonus")
    spend, transfer = await asyncio.gather(
        engine.ledger.spend(ALICE, 20, reason="redeem:x"), engine.ledger.transfer(ALICE, BOB, None)
    )
    assert spend.balance == 50 and transfer.received.amount == 50
    assert (await balance(engine, ALICE), await balance(engine, BOB)) == (0, 51)
    with pytest.raises(InsufficientFunds):
        await engine.ledger.transfer(ALICE, BOB, None)
    emptied = await engine.ledger.remove_all(BOB, actor="mod")
    assert (emptied.amount, emptied.balance) == (-51, 0)
    assert (await engine.ledger.remove_all(BOB, actor="mod")).amount == 0
    assert (await verify(engine.db)).ok
