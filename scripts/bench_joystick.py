"""Joystick.tv adapter figures, printed as one JSON object.

    .venv/bin/python scripts/bench_joystick.py [--messages N]

- ``parse_frames_per_s``: raw gateway text frames through ``parse_frame`` + ``event_from_frame``
  (the work the adapter and replay do per frame, no I/O);
- ``gateway_chat_per_s``: chat frames sent by the fake gateway (tests/fakes) over a localhost
  WebSocket, read by the real adapter and handled by the real bot (earning, event log, SQLite
  file), timed until the last one is in the event log;
  one viewer's frames are handled in the order they came (a chat line before its deletion),
  different viewers' at once (``platforms/feed.py``), so the writer commits them in groups;
- ``reconnect_ms``: from the gateway closing every socket to the adapter's new subscription
  being confirmed, with the production backoff (first wait 0.5-1 s), median of 5.

``cpu_calibration_ms`` times a fixed pure-Python loop: on a shared VM compare runs only with
similar calibrations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from pixelbot.app.assembly import App, open_app  # noqa: E402
from pixelbot.clock import SystemClock  # noqa: E402
from pixelbot.db.models import Base  # noqa: E402
from pixelbot.platforms.joystick import JoystickAdapter  # noqa: E402
from pixelbot.platforms.joystick_events import event_from_frame, parse_frame  # noqa: E402
from pixelbot.testing import make_config  # noqa: E402
from tests.fakes import joystick_server as js  # noqa: E402
from tests.fakes.joystick_server import GATEWAY, FakeJoystick  # noqa: E402


def calibration_ms() -> float:
    start = time.perf_counter()
    total = 0
    for n in range(2_000_000):
        total += n % 7
    return round((time.perf_counter() - start) * 1000, 1)


def bench_parse(count: int) -> float:
    now = SystemClock().now()
    raw = [
        json.dumps({"identifier": GATEWAY, "message": js.chat(f"user{n % 500}", "hi", f"m-{n}")})
        for n in range(count)
    ]
    start = time.perf_counter()
    for text in raw:
        event_from_frame(parse_frame(text), now)
    return count / (time.perf_counter() - start)


async def bench_gateway(count: int, folder: Path) -> tuple[float, float]:
    async with FakeJoystick(ping_every=3.0) as fake:
        config = make_config(
            folder / "pixel.db",
            economy={"earn": {"chat": {"points": 1, "xp": 1, "cooldown": "0s"}}},
            platforms={
                "console": {"enabled": False},
                "joystick": {
                    "enabled": True,
                    "client_id": js.CLIENT_ID,
                    "client_secret": js.CLIENT_SECRET,
                    "gateway_url": fake.gateway_url,
                },
            },
        )
        clock = SystemClock()
        adapter = JoystickAdapter(config.platforms.joystick, clock)
        async with open_app(config, clock=clock, platforms=[adapter]) as app:
            frames = [
                json.dumps(
                    {"identifier": GATEWAY, "message": js.chat(f"user{n % 500}", "hi", f"m-{n}")}
                )
                for n in range(count)
            ]
            start = time.perf_counter()
            for frame in frames:
                await fake.push_raw(frame)
            for _ in range(60_000):  # a hang guard of ten minutes
                if await _logged(app) >= count:
                    break
                await asyncio.sleep(0.01)
            rate = count / (time.perf_counter() - start)
            reconnects: list[float] = []
            for _ in range(5):
                before = adapter.connections
                start = time.perf_counter()
                await fake.drop()
                for _ in range(12_000):  # a hang guard of a minute
                    if adapter.connections > before:
                        break
                    await asyncio.sleep(0.005)
                reconnects.append((time.perf_counter() - start) * 1000)
            return rate, statistics.median(reconnects)


async def _logged(app: App) -> int:
    """Events in the event log (each chat frame adds one once it is committed)."""
    events = Base.metadata.tables["events"]
    async with app.engine.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    before = calibration_ms()
    parse_rate = bench_parse(args.messages * 4)
    with tempfile.TemporaryDirectory() as folder:
        chat_rate, reconnect = asyncio.run(bench_gateway(args.messages, Path(folder)))
    print(
        json.dumps(
            {
                "messages": args.messages,
                "parse_frames_per_s": round(parse_rate),
                "gateway_chat_per_s": round(chat_rate),
                "reconnect_ms": round(reconnect),
                "cpu_calibration_ms": [before, calibration_ms()],
            }
        )
    )


if __name__ == "__main__":
    main()
