"""Timers in a running bot: the scheduler's ``timers`` job says them through the outcome bus,
on the simulated clock of a scripted console (``/tick``), as a transcript shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelbot.config import Config
from pixelbot.testing import console_session, make_config


def timer_config(tmp_path: Path, *timers: dict[str, Any]) -> Config:
    return make_config(
        tmp_path / "pixel.db",
        commands={"reply_rate": {"messages": 100, "per": "30s"}},
        economy={"earn": {"chat": {"points": 0, "xp": 0}}},
        timers=list(timers),
    )


async def test_a_timer_speaks_in_chat_once_its_interval_and_lines_are_there(
    tmp_path: Path,
) -> None:
    config = timer_config(
        tmp_path, {"message": "Follow the socials!", "every": "10m", "min_chat_lines": 2}
    )
    async with console_session(config) as bot:
        lines = await bot.run(
            "/live",
            "alice: hi",
            "/tick 540",  # 9 minutes: not yet
            "bob: hello",
            "/tick 60",  # 10 minutes, 2 lines: it speaks
            "alice: one more",
            "/tick 600",  # 10 minutes later, but only 1 line since: quiet
            "bob: and another",
            "/tick 60",  # the second line came: it speaks again
        )
    assert lines == [
        "[console] the stream is live",
        "Pixel: Follow the socials!",
        "Pixel: Follow the socials!",
    ]


async def test_a_timer_is_quiet_offline_unless_it_says_offline(tmp_path: Path) -> None:
    config = timer_config(
        tmp_path,
        {"message": "We are live!", "every": "5m"},
        {"message": "Next stream on Friday", "every": "5m", "offline": True},
    )
    async with console_session(config) as bot:
        offline = await bot.run("alice: hi", "/tick 300")
        live = await bot.run("/live", "/tick 300")
    assert offline == ["Pixel: Next stream on Friday"]
    assert live == [
        "[console] the stream is live",
        "Pixel: We are live!",
        "Pixel: Next stream on Friday",
    ]
