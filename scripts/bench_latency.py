"""The latency leg of ``scripts/bench.py --latency``: what viewers feel under a steady load.

An open-loop generator pushes chat into the real bot (``open_app``, the whole command layer,
queue and workers) through a platform adapter at fixed rates, whatever the bot's speed: by
default 5,000 chat lines a second, plus 50 ``!points`` and 5 ``!tts`` redeems a second, each
also a chat line that is logged and earns. Each event is pushed as its own task, as a platform
library delivers them, at the instant the schedule says. A reply's latency is counted from that
scheduled instant (not from when the generator got round to sending it), so a bot that falls
behind cannot hide it by slowing the generator down.

The TTS redeems are performed by the real TTS worker (espeak-ng renders each line, about 10 ms
here); the player is ``none``: no sound card, and playing would only make the queue wait.

Reported: p50/p99/max reply latency of ``!points`` and of the redeems, how many events the
generator sent late (more than ``LATE_MS`` after their instant: the event loop was busy),
how many were dropped (their handling failed, or no reply came), how long the bot took to catch
up after the load stopped (``drain_seconds``: 0 when it kept up), and whether every line was
committed (the event log holds each chat line once, and ``db verify`` is clean).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pixelbot.app.assembly import open_app
from pixelbot.app.runtime_tuning import tune_after_start
from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.db.models import EventRow
from pixelbot.db.verify import verify
from pixelbot.events import ChatMessage, Viewer
from pixelbot.outcomes import OutcomeBus, Say
from pixelbot.platforms.base import Capabilities
from pixelbot.testing import FakePlatform

__all__ = ["run_latency"]

LATE_MS = 20.0  # an event pushed later than this after its scheduled instant counts as late
TICK = 0.002  # the generator wakes this often and sends everything due by then
# After the last event, how long the bot may take to catch up (a hang guard: a bot slower than
# the load catches up eventually, and "every message committed" is about loss, not speed).
DRAIN_SECONDS = 600.0


class _Replies:
    """Notes when the bot answers each message: the instant its reply is published on the
    outcome bus for the chat delivery (which then only formats and sends it; the platform's
    outgoing rate limit is lifted so lines are not held back)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.texts: dict[str, str] = {}

    async def said(self, say: Say) -> None:
        if say.reply_to is not None:
            self.at.setdefault(say.reply_to.id, time.perf_counter())
            self.texts.setdefault(say.reply_to.id, say.text)


def _config(url: str, tmp: Path) -> Config:
    return Config.model_validate(
        {
            "database": {"url": url},
            "economy": {"starting_points": 1000},  # redeemers can pay for their TTS
            "commands": {"reply_rate": {"messages": 1_000_000, "per": "1s"}},
            "redeems": {
                "tts": {
                    "title": "Text-to-Speech",
                    "cost": 25,
                    "action": {"type": "tts", "max_chars": 200, "prefix_username": True},
                }
            },
            "tts": {"dir": str(tmp / "tts"), "player": "none", "max_queue": 50},
        }
    )


def _viewer(n: int) -> Viewer:
    return Viewer("twitch", str(100000 + n), f"viewer{n}", f"Viewer{n}")


class _Load:
    """The schedule, the sends, and what came of them."""

    def __init__(self, platform: FakePlatform, viewers: int, seed: int) -> None:
        self.platform = platform
        self.rng = random.Random(seed)
        weights = [1.0 / (rank + 1) ** 1.1 for rank in range(viewers)]
        self.chatters = self.rng.choices(range(viewers), weights=weights, k=100_000)
        self.viewers = viewers
        self.sent = 0
        self.late = 0
        self.failed = 0
        self.scheduled: dict[str, tuple[str, float]] = {}  # message id -> (kind, instant)
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle = asyncio.Event()  # set whenever no pushed event is still being handled

    def send(self, kind: str, number: int, at: float, lag_ms: float) -> None:
        if kind == "chat":
            who, text = self.chatters[number % len(self.chatters)], "hello chat, how is it going?"
        elif kind == "points":
            who, text = self.chatters[(number * 7919) % len(self.chatters)], "!points"
        else:  # a redeemer of its own, so per-viewer limits never refuse one
            who, text = self.viewers + number, f"!tts number {number} says hello to everyone"
        message_id = f"{kind}-{number}"
        event = ChatMessage(
            id=message_id,
            platform="twitch",
            occurred_at=SystemClock().now(),
            viewer=_viewer(who),
            text=text,
        )
        if kind != "chat":
            self.scheduled[message_id] = (kind, at)
        self.sent += 1
        if lag_ms > LATE_MS:
            self.late += 1
        task = asyncio.create_task(self._push(event))
        self.tasks.add(task)
        self.idle.clear()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.tasks:
            self.idle.set()

    async def _push(self, event: ChatMessage) -> None:
        try:
            await self.platform.emit(event)
        except Exception:
            self.failed += 1


async def run_latency(
    url: str,
    tmp: Path,
    *,
    seconds: float,
    chat_rate: int = 5000,
    points_rate: int = 50,
    tts_rate: int = 5,
    viewers: int = 20_000,
    seed: int = 7,
) -> dict[str, Any]:
    platform = FakePlatform(
        "twitch",
        capabilities=Capabilities(messages_per_window=10**9, rate_window=timedelta(seconds=1)),
    )
    replies = _Replies()
    bus = OutcomeBus()
    bus.subscribe(replies.said, Say)
    config = _config(url, tmp)
    async with open_app(config, platforms=[platform], base_dir=tmp, bus=bus) as app:
        tune_after_start()  # what the bot does once started
        load = _Load(platform, viewers, seed)
        rates = {"chat": chat_rate, "points": points_rate, "tts": tts_rate}
        rates = {kind: rate for kind, rate in rates.items() if rate > 0}
        done = dict.fromkeys(rates, 0)
        started = time.perf_counter()
        cpu_started, process_started = time.thread_time(), time.process_time()
        while True:
            now = time.perf_counter()
            elapsed = now - started
            if elapsed >= seconds:
                break
            for kind, rate in rates.items():
                due = int(elapsed * rate) + 1
                while done[kind] < due:
                    at = started + done[kind] / rate
                    load.send(kind, done[kind], at, (now - at) * 1000)
                    done[kind] += 1
            await asyncio.sleep(TICK)
        sending = time.perf_counter() - started
        if load.tasks:  # (one waiter: asyncio.wait on thousands of tasks costs bench CPU)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(load.idle.wait(), DRAIN_SECONDS)
        drained = time.perf_counter() - started - sending
        unfinished = len(load.tasks)
        loop_cpu = time.thread_time() - cpu_started
        process_cpu = time.process_time() - process_started
        writer = app.engine.writer
        batches, operations = writer.batches, writer.operations
        alone = {"queue_rows": writer.rows_runs, "set_based": writer.set_based_runs}
        async with app.engine.db.read() as conn:
            logged = (
                await conn.execute(select(func.count()).where(EventRow.kind == "chat"))
            ).scalar_one()
        report = await verify(app.engine.db)
    by_kind: dict[str, list[float]] = {"points": [], "tts": []}
    missing = dict.fromkeys(by_kind, 0)
    wrong = 0
    for message_id, (kind, at) in load.scheduled.items():
        replied = replies.at.get(message_id)
        if replied is None:
            missing[kind] += 1
            continue
        by_kind[kind].append(replied - at)
        text = replies.texts[message_id]
        if kind == "points" and "you have" not in text:
            wrong += 1
    return {
        "seconds": seconds,
        "rates_per_s": rates,
        "sent": load.sent,
        "send_seconds": round(sending, 2),
        "drain_seconds": round(drained, 2),
        "late": load.late,
        "late_ms": LATE_MS,
        "failed": load.failed,
        "unfinished_after_drain": unfinished,
        "no_reply": missing,
        "points_replies_not_a_balance": wrong,
        "points_latency_ms": _summary(by_kind["points"]),
        "redeem_latency_ms": _summary(by_kind["tts"]),
        # CPU per chat line of the event loop's thread, and of the whole process (+ SQLite's
        # threads): what each line costs through the whole bot, steadier than wall time here
        "loop_thread_cpu_us_per_msg": round(loop_cpu / max(load.sent, 1) * 1e6, 1),
        "process_cpu_us_per_msg": round(process_cpu / max(load.sent, 1) * 1e6, 1),
        "batches": batches,
        "mean_batch": round(operations / max(batches, 1), 1),
        # runs alone between the batches: queue claims and lease renewals, payout ticks
        "writer_runs_alone": alone,
        "chat_lines_logged": logged,
        "every_message_committed": logged == load.sent,
        "verify_ok": report.ok,
    }


def _summary(samples: list[float]) -> dict[str, float | int]:
    if len(samples) < 2:
        return {"n": len(samples)}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "n": len(samples),
        "p50": round(cuts[49] * 1000, 1),
        "p99": round(cuts[98] * 1000, 1),
        "max": round(max(samples) * 1000, 1),
    }
