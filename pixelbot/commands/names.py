"""The chat command names the configured cogs declare, for checking a config before it runs.

A redeem becomes a command of its own (``!tts``), so a redeem named like a built-in command
(``give``) would lose to it and never be buyable. ``check-config`` and ``!reload`` refuse such
a file with the redeem's line instead of the bot finding out at start. The names are read from
the cog classes (the methods ``@command`` decorates), without building a bot.
"""

from __future__ import annotations

import importlib

from pixelbot.commands.core import Cog, Command
from pixelbot.config import Config

__all__ = ["cog_class", "declared_command_names"]


def cog_class(name: str) -> type[Cog]:
    """``points`` -> the Cog subclass defined in ``cogs/points.py``."""
    module = importlib.import_module(f"cogs.{name}")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Cog)
        and value is not Cog
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise LookupError(f"cogs/{name}.py must define exactly one Cog (found {len(found)})")
    return found[0]


def declared_command_names(config: Config) -> dict[str, str]:
    """{command name or alias: cog} for the cogs ``config`` loads. A cog that cannot be
    imported is left out here; the bot reports it when it loads the cogs."""
    names: dict[str, str] = {}
    for cog_name in config.commands.cogs:
        try:
            cls = cog_class(cog_name)
        except Exception:  # reported at start, with the reason (runtime.load_cogs)
            continue
        for value in vars(cls).values():
            if isinstance(value, Command):
                for name in value.names:
                    names.setdefault(name, cog_name)
    return names
