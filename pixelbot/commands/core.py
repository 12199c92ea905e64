"""Commands and cogs: ``@command`` turns a cog method into a chat command.

    class PointsCog(Cog):
        name = "points"

        @command("give", usage="give <viewer> <amount>", help="Give points to another viewer.")
        async def give(self, ctx: Context, to: Target, amount: Amount) -> None:
            ...

The parameters after ``ctx`` are converted from the words the viewer typed, by annotation (see
``converters``); a parameter with a default is optional.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pixelbot.commands.services import Services
from pixelbot.domain.permissions import LADDER, Role

if TYPE_CHECKING:
    from pixelbot.commands.context import Context

__all__ = ["Cog", "Command", "command"]

Callback = Callable[..., Awaitable[None]]


@dataclass
class Command:
    name: str
    callback: Callback
    usage: str
    help: str
    aliases: tuple[str, ...] = ()
    permission: Role = "everyone"
    user_cooldown: timedelta = timedelta(0)
    global_cooldown: timedelta = timedelta(0)
    cog: Cog | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.permission not in LADDER:
            raise ValueError(f"unknown permission {self.permission!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    async def invoke(self, ctx: Context, *args: Any) -> None:
        if self.cog is not None:
            await self.callback(self.cog, ctx, *args)
        else:
            await self.callback(ctx, *args)


def command(
    name: str,
    *,
    usage: str | None = None,
    help: str = "",
    aliases: tuple[str, ...] = (),
    permission: Role = "everyone",
    user_cooldown: timedelta = timedelta(0),
    global_cooldown: timedelta = timedelta(0),
) -> Callable[[Callback], Command]:
    def wrap(callback: Callback) -> Command:
        return Command(
            name=name,
            callback=callback,
            usage=usage or name,
            help=help,
            aliases=aliases,
            permission=permission,
            user_cooldown=user_cooldown,
            global_cooldown=global_cooldown,
        )

    return wrap


class Cog:
    """A group of related commands. Subclasses set ``name`` and decorate methods; they reach
    the economy and the queue through ``self.services``."""

    name = "cog"

    def __init__(self, services: Services) -> None:
        self.services = services

    def commands(self) -> Iterator[Command]:
        """The cog's commands, bound to this instance (plus any it builds at run time)."""
        for value in vars(type(self)).values():
            if isinstance(value, Command):
                yield Command(**{**value.__dict__, "cog": self})
        yield from self.dynamic_commands()

    def dynamic_commands(self) -> Iterator[Command]:
        """Commands that depend on configuration (e.g. one per redeem). None by default."""
        return iter(())

    async def on_load(self) -> None:
        """Called once the cog is registered (and after every config reload)."""
