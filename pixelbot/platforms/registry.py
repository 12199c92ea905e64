"""Which platforms this build can run, and how each is built from config.

A platform plugs in here, at one place: a builder that takes the configuration and the clock
and returns the adapter. ``bot.py check-config`` refuses a platform that is enabled but has no
builder yet, with one line that says so, instead of starting without it.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelbot.clock import Clock
from pixelbot.config import Config
from pixelbot.errors import ConfigIssue
from pixelbot.platforms.base import Platform
from pixelbot.platforms.console import ConsoleStream
from pixelbot.platforms.discord import DiscordAdapter
from pixelbot.platforms.joystick import JoystickAdapter
from pixelbot.platforms.twitch import TwitchAdapter
from pixelbot.vault import TokenVault

__all__ = ["BUILDERS", "build_platforms", "unbuilt_platforms"]

Builder = Callable[[Config, Clock], Platform]


def _console(config: Config, clock: Clock) -> Platform:
    return ConsoleStream(clock, bot_name=config.bot.name, prefix=config.bot.prefix)


def _twitch(config: Config, clock: Clock) -> Platform:
    url = config.database.url
    return TwitchAdapter(
        config.platforms.twitch,
        lambda: TokenVault.open(url, clock),
        clock,
        redeems=config.redeems,
    )


def _discord(config: Config, clock: Clock) -> Platform:
    url = config.database.url
    return DiscordAdapter(
        config.platforms.discord,
        lambda: TokenVault.open(url, clock),
        clock,
        prefix=config.bot.prefix,
    )


def _joystick(config: Config, clock: Clock) -> Platform:
    return JoystickAdapter(config.platforms.joystick, clock)


BUILDERS: dict[str, Builder] = {
    "console": _console,
    "twitch": _twitch,
    "discord": _discord,
    "joystick": _joystick,
}


def unbuilt_platforms(config: Config) -> list[ConfigIssue]:
    """An issue for each enabled platform this version cannot run (or one if none is on)."""
    if not config.platforms.enabled_names():
        return [
            ConfigIssue(
                "platforms",
                "no platform is enabled, so the bot would talk to nobody; enable one, or set "
                "console.enabled to auto",
            )
        ]
    return [
        ConfigIssue(
            f"platforms.{name}.enabled",
            f"the {name} adapter is not part of this version yet; set it to false",
        )
        for name in config.platforms.enabled_names()
        if name not in BUILDERS
    ]


def build_platforms(config: Config, clock: Clock) -> list[Platform]:
    """The adapters of every enabled platform (``unbuilt_platforms`` must be empty)."""
    return [BUILDERS[name](config, clock) for name in config.platforms.enabled_names()]
