"""The command layer: the configured cogs, loaded by name, and the router their commands live
in. A chat line that starts with the prefix is dispatched here.

A cog that fails to load is reported and the others still start; a command whose name is
taken (say a redeem called ``top``) is left out with a note. ``load_cogs`` may run again
(``!reload``); the router is only replaced once every cog has been built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pixelbot.commands.context import Context
from pixelbot.commands.core import Cog
from pixelbot.commands.dispatcher import CommandRouter
from pixelbot.commands.names import cog_class
from pixelbot.commands.services import Services
from pixelbot.config import Config
from pixelbot.events import ChatMessage

__all__ = ["CommandLayer"]

log = logging.getLogger(__name__)


class CommandLayer:
    def __init__(self, settings: Callable[[], Config]) -> None:
        self._settings = settings
        self.router = CommandRouter()
        self.cogs: dict[str, Cog] = {}
        self.cog_errors: dict[str, str] = {}
        self.services: Services | None = None  # set by the app before the cogs load

    async def load_cogs(self) -> dict[str, str]:
        """(Re)load the configured cogs. Returns {cog name: problem} for those that failed
        to load or lost a command to a name clash; the others run regardless."""
        assert self.services is not None, "the app gives the command layer its services first"
        config = self._settings()
        router = CommandRouter()
        cogs: dict[str, Cog] = {}
        errors: dict[str, str] = {}
        for name in config.commands.cogs:
            added: list[str] = []
            try:
                cog = cog_class(name)(self.services)
                skipped = []
                for command in cog.commands():
                    if any(router.get(alias) for alias in command.names):
                        skipped.append(command.name)  # e.g. a redeem named like a command
                        continue
                    router.add(command)
                    added.append(command.name)
                await cog.on_load()
            except Exception as exc:  # one broken cog must not stop the others
                log.warning(
                    "cog %s failed to load: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG)
                )
                errors[name] = f"did not load: {type(exc).__name__}: {exc}"
                router.remove(added)
                continue
            cogs[name] = cog
            if skipped:
                taken = ", ".join(f"{config.bot.prefix}{n}" for n in skipped)
                errors[name] = f"loaded without {taken} (the name is taken)"
        self.router.replace(router)
        self.cogs, self.cog_errors = cogs, errors
        return errors

    async def handle(self, message: ChatMessage, *, balance: int | None = None) -> bool:
        """Dispatch ``message`` if it is a command. True when it was one. ``balance``: the
        author's balance as the message left it (``Earned.balance``), if known."""
        assert self.services is not None
        prefix = self._settings().bot.prefix
        text = message.text
        if not text.startswith(prefix) or len(text) <= len(prefix):
            return False
        context = Context(self.services, message, "", balance)
        await self.router.dispatch(context, text[len(prefix) :])
        return True
