"""The in-memory batch: rollback undoes exactly one operation, and a finished batch is freed by
reference counting alone (a busy writer makes one per commit, each holding thousands of rows)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pixelbot.economy.batch import SPEND, Account, Batch, LevelReward, OpenItem, Policy
from pixelbot.errors import InsufficientFunds

NOW = datetime(2026, 5, 1, 18, tzinfo=UTC)


def loaded_batch() -> Batch:
    batch = Batch(NOW, Policy(level_rewards={2: LevelReward(points=50, message="gg")}))
    batch.accounts[1] = Account(1, "alice", 100, 0, 1, 1)
    batch.accounts[2] = Account(2, "bob", 0, 0, 1, 1)
    batch.checked_tx_refs = {"chat-1", "spend-1"}
    batch.checked_event_refs = {"chat-1"}
    batch.queue_ids = [10, 11]
    batch.pending_counts = {"tts": 0}
    batch.open_items[7] = OpenItem(7, "tts", "pending", 1, None, {})
    return batch


def every_kind_of_change(batch: Batch) -> None:
    alice = batch.account(1)
    batch.log("chat", platform="console", user_id=1, ref="chat-1", payload={"text": "hi"})
    batch.credit(alice, 10, kind="earn", reason="chat", ref="chat-1")
    batch.add_xp(alice, 500, reason="chat", ref="chat-1")  # a level-up with a reward
    batch.start_cooldown("user:1", "earn:chat", timedelta(seconds=60))
    batch.debit(alice, 25, kind=SPEND, reason="tts", ref="spend-1")
    batch.refund("spend-1", reason="failed")
    batch.enqueue({"kind": "tts", "user_id": 1})
    batch.settle(7, "failed", "no voice")
    batch.count_redeem("tts", 1)


def state(batch: Batch) -> tuple[object, ...]:
    return (
        [(a.points, a.xp, a.level, a.rewarded_level, a.dirty) for a in batch.accounts.values()],
        list(batch.transactions),
        list(batch.xp_transactions),
        list(batch.events),
        dict(batch.cooldowns),
        dict(batch.cooldown_rows),
        set(batch.tx_refs),
        set(batch.xp_refs),
        set(batch.event_refs),
        dict(batch.charges),
        list(batch.queue_items),
        dict(batch.open_items),
        list(batch.settled_items),
        {slot: count for slot, count in batch.redeem_counts.items() if count},  # 0 == absent
        dict(batch.pending_counts),
    )


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_rollback_to_a_checkpoint_undoes_every_kind_of_change() -> None:
    batch = loaded_batch()
    before = state(batch)
    checkpoint = batch.checkpoint()
    every_kind_of_change(batch)
    assert state(batch) != before
    batch.rollback(checkpoint)
    assert state(batch) == before


def test_a_refused_operation_rolls_back_alone() -> None:
    batch = loaded_batch()
    batch.log("chat", platform="console", user_id=1, ref="chat-1", payload={})
    batch.start_cooldown("user:1", "earn:chat", timedelta(seconds=60))
    kept = state(batch)
    checkpoint = batch.checkpoint()
    batch.start_cooldown("user:1", "earn:chat", timedelta(seconds=5))
    with pytest.raises(InsufficientFunds):
        batch.debit(batch.account(2), 30, kind=SPEND, reason="tts", ref="spend-1")
    batch.rollback(checkpoint)
    assert state(batch) == kept
    assert batch.cooldown_remaining("user:1", "earn:chat") == 60.0


@pytest.mark.usefixtures("no_gc")
def test_a_used_batch_is_freed_without_the_cycle_collector() -> None:
    batch = loaded_batch()
    every_kind_of_change(batch)
    assert len(batch.events) >= 2 and batch.cooldown_rows  # the changes happened
    gone = weakref.ref(batch)
    del batch
    assert gone() is None, "a batch in a reference cycle waits for a full GC pass"


@pytest.mark.usefixtures("no_gc")
def test_a_rolled_back_batch_is_freed_without_the_cycle_collector() -> None:
    batch = loaded_batch()
    every_kind_of_change(batch)
    batch.rollback(0)
    gone = weakref.ref(batch)
    del batch
    assert gone() is None
