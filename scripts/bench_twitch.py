"""Twitch adapter figures, printed as one JSON object.

    .venv/bin/python scripts/bench_twitch.py [--messages N] [--viewers V]

- ``eventsub_chat_per_s``: ``channel.chat.message`` notifications sent by the fake Twitch
  (tests/fakes) over a localhost EventSub WebSocket, read by the real twitchio client and the
  real adapter and handled by the real bot (earning, event log, SQLite file), timed until the
  last one is in the event log. One viewer's lines are handled in order, different viewers'
  at once (``platforms/feed.py``), so the writer commits them in groups.

``cpu_calibration_ms`` times a fixed pure-Python loop: on a shared VM compare runs only with
similar calibrations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from pixelbot.app.assembly import App, open_app  # noqa: E402
from pixelbot.clock import SystemClock  # noqa: E402
from pixelbot.db import migrate  # noqa: E402
from pixelbot.db.engine import Database  # noqa: E402
from pixelbot.db.models import Base  # noqa: E402
from pixelbot.platforms.twitch import TwitchAdapter  # noqa: E402
from pixelbot.testing import make_config  # noqa: E402
from pixelbot.vault import Token, TokenVault  # noqa: E402
from tests.fakes import twitch_payloads as p  # noqa: E402
from tests.fakes.twitch_server import FakeTwitch  # noqa: E402

BOT_SCOPES = ["user:bot", "user:read:chat", "user:write:chat"]


def calibration_ms() -> float:
    start = time.perf_counter()
    total = 0
    for n in range(2_000_000):
        total += n % 7
    return round((time.perf_counter() - start) * 1000, 1)


async def bench_eventsub(count: int, viewers: int, folder: Path) -> float:
    key = Fernet.generate_key()
    clock = SystemClock()
    async with FakeTwitch() as fake:
        fake.add_user_token("bot-access", "bot-refresh", p.BOT, BOT_SCOPES)
        # (the channel must exist; the bot runs chat without the broadcaster's token)
        fake.add_user_token("caster-access", "caster-refresh", p.BROADCASTER, ["channel:bot"])
        config = make_config(
            folder / "pixel.db",
            economy={"earn": {"chat": {"points": 1, "xp": 1, "cooldown": "0s"}}},
            platforms={
                "console": {"enabled": False},
                "twitch": {
                    "enabled": True,
                    "channel": p.BROADCASTER["login"],
                    "client_id": "fake-client-id",
                    "client_secret": "fake-secret",
                    "bot_id": p.BOT["id"],
                    "api_url": fake.api_url,
                    "auth_url": fake.auth_url,
                    "eventsub_url": fake.eventsub_url,
                },
            },
        )
        db = Database(config.database.url)
        try:
            await migrate.upgrade(db)
            vault = TokenVault(db, key, clock)
            await vault.store(
                Token("twitch", p.BOT["id"], "bot-access", "bot-refresh", tuple(BOT_SCOPES))
            )
            adapter = TwitchAdapter(config.platforms.twitch, lambda: vault, clock)
            async with open_app(config, clock=clock, platforms=[adapter]) as app:
                if app.platform_errors:
                    raise SystemExit(f"twitch did not start: {app.platform_errors}")
                notes = [
                    p.chat(str(1000 + n % viewers), f"user{n % viewers}", "hi", f"m-{n}")
                    for n in range(count)
                ]
                start = time.perf_counter()
                for note in notes:
                    await fake.notify(*note)
                for _ in range(60_000):  # a hang guard of ten minutes
                    if await _logged(app) >= count:
                        break
                    await asyncio.sleep(0.01)
                return count / (time.perf_counter() - start)
        finally:
            await db.dispose()


async def _logged(app: App) -> int:
    """Events in the event log (each chat line adds one once it is committed)."""
    events = Base.metadata.tables["events"]
    async with app.engine.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--viewers", type=int, default=500)
    args = parser.parse_args()
    before = calibration_ms()
    with tempfile.TemporaryDirectory() as folder:
        rate = asyncio.run(bench_eventsub(args.messages, args.viewers, Path(folder)))
    print(
        json.dumps(
            {
                "messages": args.messages,
                "viewers": args.viewers,
                "eventsub_chat_per_s": round(rate),
                "cpu_calibration_ms": [before, calibration_ms()],
            }
        )
    )


if __name__ == "__main__":
    main()
