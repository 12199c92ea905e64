"""OrderedFeed: per-key order, concurrency across keys, barriers, the bound, failures and close.

The sink is a deterministic fake: every job records when it starts and ends and finishes only
when the test opens its gate, so each test decides the interleaving it checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import timedelta

import pytest

from pixelbot.clock import utc
from pixelbot.events import (
    ChatMessage,
    GiftedSubs,
    MessageDeleted,
    PresenceLeft,
    RewardRedemption,
    StreamOffline,
    StreamOnline,
    Viewer,
    ViewerBanned,
)
from pixelbot.platforms.feed import OrderedFeed, event_key

pytestmark = pytest.mark.no_database

AT = utc(2026, 12, 1, 12)
ALICE = Viewer("twitch", "1", "alice", "Alice")
BOB = Viewer("twitch", "2", "bob", "Bob")


class Sink:
    """Jobs by name; each waits for its gate; the log says what started and ended when."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.cancelled: list[str] = []

    def job(
        self, name: str, *, fail: bool = False, gated: bool = True
    ) -> Callable[[], Awaitable[None]]:
        gate = self.gates.setdefault(name, asyncio.Event())
        if not gated:
            gate.set()

        async def run() -> None:
            self.log.append(("start", name))
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise
            if fail:
                self.log.append(("fail", name))
                raise RuntimeError(f"{name} failed")
            self.log.append(("end", name))

        return run

    def open(self, name: str) -> None:
        self.gates[name].set()

    def started(self) -> list[str]:
        return [name for what, name in self.log if what == "start"]

    def ended(self) -> list[str]:
        return [name for what, name in self.log if what == "end"]


async def settle() -> None:
    """Let every task that can run, run (the fake sink never sleeps)."""
    for _ in range(20):
        await asyncio.sleep(0)


def pump(
    feed: OrderedFeed, items: Sequence[tuple[Hashable | None, Callable[[], Awaitable[None]]]]
) -> asyncio.Task[None]:
    """The adapter's reading task: submits one after another, as the socket delivers."""

    async def run() -> None:
        for key, job in items:
            await feed.submit(key, job, "a test job")

    return asyncio.create_task(run())


async def test_one_key_runs_in_arrival_order() -> None:
    sink, feed = Sink(), OrderedFeed("test")
    reader = pump(feed, [("a", sink.job(f"a{n}")) for n in range(4)])
    await settle()
    assert reader.done()  # same-key jobs queue without holding the reader
    assert sink.started() == ["a0"]
    for n in (3, 2, 1):  # opened out of order: still run in order
        sink.open(f"a{n}")
    await settle()
    assert sink.started() == ["a0"]
    sink.open("a0")
    await feed.drain()
    assert sink.log == [(what, f"a{n}") for n in range(4) for what in ("start", "end")]
    await feed.close()


async def test_different_keys_run_at_once() -> None:
    sink, feed = Sink(), OrderedFeed("test")
    pump(feed, [("a", sink.job("a")), ("b", sink.job("b")), ("c", sink.job("c"))])
    await settle()
    assert sink.started() == ["a", "b", "c"]  # all three in flight, none finished
    assert sink.ended() == []
    assert feed.in_flight == 3
    sink.open("c")
    await settle()
    assert sink.ended() == ["c"]  # a later key is not held behind an earlier one
    sink.open("a")
    sink.open("b")
    await feed.drain()
    assert feed.in_flight == 0
    await feed.close()


async def test_a_barrier_waits_for_everything_before_and_holds_everything_after() -> None:
    sink, feed = Sink(), OrderedFeed("test")
    reader = pump(
        feed,
        [
            ("a", sink.job("a1")),
            ("b", sink.job("b1")),
            (None, sink.job("online")),
            ("c", sink.job("c1", gated=False)),
            ("a", sink.job("a2", gated=False)),
        ],
    )
    await settle()
    assert sink.started() == ["a1", "b1"]
    sink.open("a1")
    await settle()
    assert sink.started() == ["a1", "b1"]  # b1 still runs: the barrier waits
    sink.open("b1")
    await settle()
    assert sink.started() == ["a1", "b1", "online"]
    assert not reader.done()  # nothing after the barrier is even taken
    sink.open("online")
    await settle()
    await feed.drain()
    assert reader.done()
    assert sink.ended() == ["a1", "b1", "online", "c1", "a2"]
    assert sink.log.index(("end", "online")) < sink.log.index(("start", "c1"))
    await feed.close()


async def test_the_bound_holds_the_reader() -> None:
    sink, feed = Sink(), OrderedFeed("test", limit=3)
    reader = pump(feed, [(f"k{n}", sink.job(f"k{n}")) for n in range(6)])
    await settle()
    assert sink.started() == ["k0", "k1", "k2"]
    assert feed.in_flight == 3
    assert not reader.done()  # the reader waits instead of queueing more
    sink.open("k1")
    await settle()
    assert sink.started() == ["k0", "k1", "k2", "k3"]
    assert feed.in_flight == 3
    for n in (0, 2, 3, 4, 5):
        sink.open(f"k{n}")
    await settle()
    await feed.drain()
    assert reader.done()
    assert sorted(sink.ended()) == [f"k{n}" for n in range(6)]
    await feed.close()


async def test_jobs_waiting_for_their_key_count_against_the_bound() -> None:
    sink, feed = Sink(), OrderedFeed("test", limit=2)
    reader = pump(feed, [("a", sink.job("a1")), ("a", sink.job("a2")), ("b", sink.job("b1"))])
    await settle()
    assert sink.started() == ["a1"]
    assert feed.in_flight == 2
    assert not reader.done()  # b1 waits for room, not for a
    sink.open("a1")
    await settle()
    assert sink.started() == ["a1", "a2", "b1"]
    sink.open("a2")
    sink.open("b1")
    await feed.drain()
    await feed.close()


async def test_a_failing_job_is_logged_and_stops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    sink, feed = Sink(), OrderedFeed("test")
    caplog.set_level(logging.ERROR, logger="pixelbot.platforms.feed")
    pump(
        feed,
        [
            ("a", sink.job("a1", fail=True, gated=False)),
            ("a", sink.job("a2", gated=False)),
            ("b", sink.job("b1", gated=False)),
            (None, sink.job("barrier", fail=True, gated=False)),
            ("b", sink.job("b2", gated=False)),
        ],
    )
    await settle()
    await feed.drain()
    assert sink.ended() == ["a2", "b1", "b2"]
    assert feed.failed == 2
    assert [r.getMessage() for r in caplog.records] == ["test: could not handle a test job"] * 2
    assert all(r.exc_info is not None for r in caplog.records)
    await feed.close()


async def test_close_lets_quick_jobs_finish_and_cancels_the_stuck_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, feed = Sink(), OrderedFeed("test", grace=0.05)
    pump(feed, [("a", sink.job("stuck")), ("a", sink.job("behind")), ("b", sink.job("quick"))])
    await settle()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, sink.open, "quick")
    await feed.close()
    assert sink.ended() == ["quick"]
    assert sink.cancelled == ["stuck"]  # "behind" never started: cancelled while waiting
    assert sink.started() == ["stuck", "quick"]
    assert feed.in_flight == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left behind
    assert "stopped with 2 event(s) unfinished" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        await feed.submit("a", sink.job("late"), "late")


async def test_cancelling_the_reader_inside_a_barrier_cancels_the_barrier() -> None:
    sink, feed = Sink(), OrderedFeed("test", grace=0.05)
    reader = pump(feed, [(None, sink.job("offline"))])
    await settle()
    assert sink.started() == ["offline"]
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert sink.cancelled == ["offline"]
    await feed.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        OrderedFeed("test", limit=0)


def test_event_keys() -> None:
    tw, at = "twitch", AT
    alice, bob = ("twitch", "1"), ("twitch", "2")
    chat = ChatMessage(id="m1", viewer=ALICE, text="!tts hi", platform=tw, occurred_at=at)
    assert event_key(chat) == alice
    deleted = MessageDeleted(id="d1", message_id="m1", author=ALICE, platform=tw, occurred_at=at)
    assert event_key(deleted) == alice  # a deletion stays behind the line it deletes
    assert event_key(MessageDeleted(id="d2", message_id="m9", platform=tw, occurred_at=at)) is None
    timeout = timedelta(minutes=5)
    banned = ViewerBanned(id="b1", viewer=BOB, duration=timeout, platform=tw, occurred_at=at)
    assert event_key(banned) == bob
    assert event_key(PresenceLeft(id="l1", viewer=BOB, platform=tw, occurred_at=at)) == bob
    reward = RewardRedemption(
        id="r1", viewer=ALICE, reward="tts", redemption_id="x", platform=tw, occurred_at=at
    )
    assert event_key(reward) == alice
    assert event_key(GiftedSubs(id="g1", gifter=BOB, count=5, platform=tw, occurred_at=at)) == bob
    anonymous = GiftedSubs(id="g2", gifter=None, count=5, platform=tw, occurred_at=at)
    assert event_key(anonymous) is None
    assert event_key(StreamOnline(id="s1", channel="c", platform=tw, occurred_at=at)) is None
    assert event_key(StreamOffline(id="s2", channel="c", platform=tw, occurred_at=at)) is None


async def test_close_cancelled_while_it_waits_still_cancels_every_job() -> None:
    """A hurried shutdown cancels the stop in its grace: no job may outlive the feed."""
    sink, feed = Sink(), OrderedFeed("test", grace=30)
    pump(feed, [("a", sink.job("stuck")), ("b", sink.job("other"))])
    await settle()
    closing = asyncio.create_task(feed.close(quiet=True))
    await settle()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert sorted(sink.cancelled) == ["other", "stuck"]
    assert feed.cut == 2 and feed.in_flight == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
