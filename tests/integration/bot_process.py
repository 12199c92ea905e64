"""A second (and third) bot process for the multi-process tests, run as a real subprocess.

    python bot_process.py spend URL USER_ID COUNT COST
        prints "ready", waits for a line on stdin, then spends COST from wallet USER_ID COUNT
        times through the real engine and writer, ten concurrent spends at a time (so the two
        processes' commits interleave); prints {"ok": n, "refused": m, "errors": [...]}.
    python bot_process.py redeem URL KEY NAME COUNT
        like spend: COUNT concurrent redeems of KEY, each by a different viewer NAME-n (so no
        wallet lock orders them); prints {"ok": n, "refused": m, "errors": [...]}.
    python bot_process.py work URL NAME LOG_FILE LEASE_SECONDS
        runs the real queue runner for ``tts`` with a worker that appends "start NAME ID" and
        "done NAME ID" lines to LOG_FILE; an item whose text is ``slow`` takes 1.5 s, ``hang``
        never ends. Runs until killed (SIGTERM stops it cleanly, SIGKILL is a crash).

Both open the database exactly as the bot does (``Engine.open``: migrations, writer, queue
store); only the worker is a stand-in, since what is tested is who runs and settles what.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pixelbot.app import Engine
from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.errors import InsufficientFunds, OnCooldown, RedeemRefused
from pixelbot.events import Viewer
from pixelbot.queue.runner import Outcome, QueueRunner
from pixelbot.queue.worker import Done, Job

SAY = {"type": "chat", "message": "o/"}
REDEEMS: dict[str, Any] = {
    "tts": {"title": "TTS", "cost": 25, "action": {"type": "tts"}},
    "hug": {"title": "Hug", "cost": 0, "global_cooldown": "1h", "action": SAY},
    "limited": {"title": "Limited", "cost": 0, "max_per_stream": 3, "action": SAY},
}


def config_for(url: str) -> Config:
    return Config.model_validate(
        {"database": {"url": url}, "redeems": REDEEMS, "queue": {"timeouts": {"tts": "1h"}}}
    )


async def spend(url: str, user_id: int, count: int, cost: int) -> None:
    results: list[Any] = []
    async with Engine.open(config_for(url), SystemClock()) as engine:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the test starts both at once
        for _ in range(0, count, 10):
            results += await asyncio.gather(
                *(engine.ledger.spend(user_id, cost, reason="race") for _ in range(10)),
                return_exceptions=True,
            )
    refused = sum(isinstance(r, InsufficientFunds) for r in results)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    errors = [r for r in errors if "InsufficientFunds" not in r]
    print(json.dumps({"ok": count - refused - len(errors), "refused": refused, "errors": errors}))


async def redeem(url: str, key: str, name: str, count: int) -> None:
    async with Engine.open(config_for(url), SystemClock()) as engine:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        session_id, since = await engine.streams.window()
        results = await asyncio.gather(
            *(
                engine.redeems.redeem(
                    key,
                    engine.catalog.get(key),
                    Viewer("twitch", f"id-{name}-{n}", f"{name}-{n}", f"{name}-{n}"),
                    None,
                    ref=f"redeem:{name}:{n}",
                    stream_session_id=session_id,
                    counts_since=since,
                )
                for n in range(count)
            ),
            return_exceptions=True,
        )
    refused = sum(isinstance(r, RedeemRefused | OnCooldown) for r in results)
    errors = [
        repr(r)
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, RedeemRefused | OnCooldown)
    ]
    print(json.dumps({"ok": count - refused - len(errors), "refused": refused, "errors": errors}))


class LoggingWorker:
    kind = "tts"

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log

    def _line(self, what: str, item_id: int) -> None:
        with self.log.open("a") as out:
            out.write(f"{what} {self.name} {item_id}\n")

    async def perform(self, job: Job) -> Done:
        self._line("start", job.item_id)
        if job.text == "slow":
            await asyncio.sleep(1.5)
        elif job.text == "hang":
            await asyncio.Event().wait()
        self._line("done", job.item_id)
        return Done(f"#{job.item_id} ok", result={"by": self.name})

    async def close(self) -> None:
        return None


async def work(url: str, name: str, log: Path, lease_seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def report(outcome: Outcome) -> None:
        return None

    def say_for(payload: dict[str, object]) -> Callable[[str], Any]:
        async def say(text: str) -> None:
            return None

        return say

    async with Engine.open(config_for(url), SystemClock()) as engine:
        engine.queue.lease = timedelta(seconds=lease_seconds)
        runner = QueueRunner(
            engine.queue,
            {"tts": LoggingWorker(name, log)},
            timeouts={},
            report=report,
            say_for=say_for,
        )
        await runner.start()
        with log.open("a") as out:
            out.write(f"ready {name} {engine.queue.owner}\n")
        await stop.wait()
        await runner.stop(grace=1.0)


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    if mode == "spend":
        user_id, count, cost = rest
        asyncio.run(spend(url, int(user_id), int(count), int(cost)))
    elif mode == "redeem":
        key, name, count = rest
        asyncio.run(redeem(url, key, name, int(count)))
    elif mode == "work":
        name, log, lease = rest
        asyncio.run(work(url, name, Path(log), float(lease)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
