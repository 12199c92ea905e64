"""What the overlay tests share: a bot configured with a wheel, TTS and alerts on the overlays,
and ways to drive it (a viewer's chat line) and to read the pages."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from pixelbot.clock import SystemClock
from pixelbot.config import Config
from pixelbot.events import Viewer
from pixelbot.testing import EventFactory, viewer
from tests.web.conftest import OVERLAY_KEY, Bot, overlay_url, web_config

__all__ = [
    "ALICE",
    "PRIZES",
    "SPIN_COST",
    "TTS_COST",
    "XSS_NAME",
    "config_for",
    "open_overlay",
    "page_rotation",
    "say",
    "slice_under_pointer",
]

PRIZES: list[dict[str, Any]] = [
    {"name": "50 Points", "weight": 30, "points": 50},
    {"name": "Nothing", "weight": 20},
    {"name": "1000 XP", "weight": 15, "xp": 1000},
    {"name": "Jackpot", "weight": 1, "points": 5000},
    {"name": "Hat", "weight": 10, "message": "{user} gets a hat"},
    {"name": "Sock", "weight": 4},
]
SPIN_COST = 10
TTS_COST = 25
REDEEMS = {
    "spin": {"title": "Prize Wheel", "cost": SPIN_COST, "action": {"type": "wheel"}},
    "tts": {"title": "Text-to-Speech", "cost": TTS_COST, "action": {"type": "tts"}},
}
XSS_NAME = "<img src=x onerror=window.__xss=1><script>__xss=2</script>"
ALICE = viewer("alice")


def config_for(db_path: Path, **web: Any) -> Config:
    overlays = {
        # (a generous grace: a browser starved by a busy machine is slow, not broken)
        "wheel": {"wait": True, "spin_time": "150ms", "page_timeout": "1s", "grace": "15s"},
        "alerts": {"duration": "600ms"},
        "tts": {"page_timeout": "1s", "grace": "15s"},
        **web,
    }
    return web_config(
        db_path,
        web={"enabled": True, "port": 0, "overlay_key": OVERLAY_KEY, "overlays": overlays},
        wheels={"main": {"prizes": PRIZES}},
        redeems=REDEEMS,
        economy={"starting_points": 10_000, "earn": {"chat": {"points": 0}}},
        tts={"dir": str(db_path.parent / "tts"), "player": "none", "output": "overlay"},
    )


async def say(bot: Bot, who: Viewer, text: str) -> None:
    await bot.platform.emit(EventFactory(SystemClock(), "twitch").chat(who, text))  # type: ignore[arg-type]


async def open_overlay(page: Page, bot: Bot, name: str) -> None:
    await page.goto(overlay_url(bot, name))
    await page.wait_for_function("() => document.body.dataset.connected === 'true'")
    async with asyncio.timeout(5):  # the page's socket is attached on the bot's side too
        while not bot.app.overlays.watching(name):  # type: ignore[union-attr]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def slice_under_pointer(rotation: float, weights: list[float]) -> int:
    """Which slice ends under the pointer (at the top) after the wheel turned ``rotation``
    degrees clockwise: the test's own arithmetic, not the page's."""
    point = (-rotation) % 360.0  # the wheel's angle now at the top
    total = sum(weights)
    start = 0.0
    for index, weight in enumerate(weights):
        end = start + weight / total * 360.0
        if start <= point < end:
            return index
        start = end
    return len(weights) - 1


async def page_rotation(page: Page) -> float:
    """The wheel's rotation as the browser renders it (from the computed CSS transform)."""
    a, b = await page.evaluate(
        """() => {
            const wheel = document.getElementById('wheel-canvas');
            const m = new DOMMatrix(getComputedStyle(wheel).transform);
            return [m.a, m.b];
        }"""
    )
    return math.degrees(math.atan2(b, a))
