"""From a chat line to a command call: find the command, check permission and cooldowns,
convert the arguments, run it, and turn any refusal into one short reply.

Refusals never change anything: checks run before the command, and the economy refuses
atomically. An unexpected crash in one command is logged and answered politely; the bot goes
on serving everyone else.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import types
import typing
from datetime import timedelta
from typing import Any

from pixelbot.commands.context import Context
from pixelbot.commands.converters import (
    Amount,
    Duration,
    RedeemName,
    Rest,
    Target,
    Word,
    parse_amount,
    parse_count,
    parse_duration_arg,
    parse_target,
)
from pixelbot.commands.core import Command
from pixelbot.domain.durations import format_duration
from pixelbot.domain.limits import quote
from pixelbot.errors import (
    AmbiguousViewer,
    BadArgument,
    BalanceLimitExceeded,
    DatabaseError,
    InsufficientFunds,
    InvalidAmount,
    LimitReached,
    NotPermitted,
    OnCooldown,
    PixelbotError,
    RedeemDisabled,
    SelfTransfer,
    UnknownRedeem,
    UnknownViewer,
    WriterStopped,
)
from pixelbot.events import Viewer

__all__ = ["CANT_SAVE", "RESTARTING", "CommandRouter", "render_error"]

# What chat hears about any database fault; the cause goes to the operator (db/faults.py).
CANT_SAVE = "the bot can't save right now, nothing was charged; try again in a moment"
# What chat hears when a command meets the economy writer stopped (a shutdown, or a start not
# finished); the log keeps the writer's own words.
RESTARTING = "the bot is restarting, try again in a moment"

log = logging.getLogger(__name__)

_PARSERS: dict[Any, Any] = {
    Amount: parse_amount,
    Target: parse_target,
    int: parse_count,
    Duration: parse_duration_arg,
    Word: str,
    RedeemName: str,
    str: str,
}


class CommandRouter:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def clear(self) -> None:
        self._commands.clear()

    def replace(self, other: CommandRouter) -> None:
        """Take over another router's commands (a reload swaps them in at once)."""
        self._commands = dict(other._commands)

    def remove(self, names: list[str]) -> None:
        """Drop these commands (and their aliases)."""
        for name in names:
            command = self._commands.get(name)
            if command is not None:
                for alias in command.names:
                    self._commands.pop(alias, None)

    def add(self, command: Command) -> None:
        for name in command.names:
            existing = self._commands.get(name)
            if existing is not None and existing is not command:
                raise ValueError(f"command {name!r} is defined twice")
            self._commands[name] = command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name.lower())

    def all(self) -> list[Command]:
        unique = {id(command): command for command in self._commands.values()}
        return sorted(unique.values(), key=lambda command: command.name)

    async def dispatch(self, ctx: Context, text: str) -> None:
        """Run the command in ``text`` (already stripped of the prefix)."""
        name, _, rest = text.strip().partition(" ")
        ctx.invoked_with = name.lower()
        command = self.get(name)
        if command is None:
            hint = f". Try {ctx.prefix}help" if self.get("help") else ""
            await ctx.reply(f"I don't know {ctx.prefix}{quote(name)}{hint}")
            return
        try:
            if not ctx.allowed(command.permission):
                raise NotPermitted(command.permission)
            args = convert_arguments(command, rest)
            await _invoke_reserving_cooldowns(ctx, command, args)
        except PixelbotError as refused:
            if isinstance(refused, WriterStopped):
                log.warning("%s%s did not run: %s", ctx.prefix, command.name, refused)
            await ctx.reply(render_error(refused, ctx, command))
        except Exception:
            log.exception("command %s crashed (message %r)", command.name, text)
            await ctx.reply("something went wrong with that command; nothing was charged")


async def _invoke_reserving_cooldowns(ctx: Context, command: Command, args: list[Any]) -> None:
    """Run the command holding its cooldowns: they are taken (checked and started) in one
    writer operation before it runs, so two copies arriving together cannot both pass, and
    given back if the command is refused, so a refusal spends no cooldown."""
    slots = _cooldown_slots(ctx, command)
    if not slots:
        await command.invoke(ctx, *args)
        return
    cooldowns = ctx.services.cooldowns
    await cooldowns.reserve(*slots)
    try:
        await command.invoke(ctx, *args)
    except BaseException:
        await cooldowns.release(*slots)
        raise


def _cooldown_slots(ctx: Context, command: Command) -> list[tuple[Viewer | None, str, timedelta]]:
    key = f"command:{command.name}"
    slots: list[tuple[Viewer | None, str, timedelta]] = []
    if command.global_cooldown:
        slots.append((None, key, command.global_cooldown))
    if command.user_cooldown:
        slots.append((ctx.author, key, command.user_cooldown))
    return slots


@functools.lru_cache(maxsize=1024)
def _typed_parameters(callback: Any) -> tuple[list[inspect.Parameter], dict[str, Any]]:
    """A callback's parameters and their annotations, resolved once per callback: resolving
    them (evaluating the annotations' text) cost ~80 us of the event loop on every command."""
    parameters = list(inspect.signature(callback).parameters.values())
    return parameters, typing.get_type_hints(callback)


def convert_arguments(command: Command, text: str) -> list[Any]:
    """The command's parameters from the words typed; BadArgument (with usage) if they don't fit."""
    parameters, hints = _typed_parameters(command.callback)
    skip = 2 if command.cog is not None else 1  # self, ctx
    words = text.split()
    values: list[Any] = []
    try:
        for parameter in parameters[skip:]:
            kind = hints.get(parameter.name, str)
            optional = parameter.default is not inspect.Parameter.empty
            kind = _unwrap_optional(kind)
            if kind is Rest:
                rest = text.strip() if not values else _rest_after(text, len(values))
                if not rest and not optional:
                    raise BadArgument(f"<{parameter.name}> is missing")
                values.append(Rest(rest) if rest else parameter.default)
                return values
            if not words:
                if optional:
                    values.append(parameter.default)
                    continue
                raise BadArgument(f"<{parameter.name}> is missing")
            values.append(_PARSERS[kind](words.pop(0)))
        if words:
            raise BadArgument("too many words")
    except BadArgument as problem:
        raise BadArgument(problem.detail, command.usage) from None
    return values


def _unwrap_optional(kind: Any) -> Any:
    """``Amount | None`` -> ``Amount``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _rest_after(text: str, consumed: int) -> str:
    parts = text.strip().split(maxsplit=consumed)
    return parts[consumed] if len(parts) > consumed else ""


def render_error(error: PixelbotError, ctx: Context, command: Command | None = None) -> str:
    """One short chat reply for a refusal (the caller adds the @mention)."""
    prefix = ctx.prefix
    match error:
        case DatabaseError():
            return CANT_SAVE
        case WriterStopped():
            return RESTARTING
        case InsufficientFunds():
            currency = ctx.services.settings().bot.currency
            noun = currency.singular if error.missing == 1 else currency.plural
            return f"you need {error.missing:,} more {noun} (you have {error.balance:,})"
        case OnCooldown():
            seconds = max(1, math.ceil(error.remaining))
            name = error.key.removeprefix("command:")
            return f"{prefix}{name} is on cooldown for {format_duration_seconds(seconds)}"
        case BadArgument():
            usage = f" Usage: {prefix}{error.usage}" if error.usage else ""
            return f"{error.detail}.{usage}"
        case NotPermitted():
            return f"{prefix}{error.what or ctx.invoked_with} is for {error.required}s only"
        case UnknownViewer():
            return f"I don't know anyone called {quote(error.name)}"
        case AmbiguousViewer():
            return f"several viewers are called {quote(error.name)}; use their login name"
        case SelfTransfer():
            return "you can't give points to yourself"
        case BalanceLimitExceeded():
            return f"that would pass the maximum balance of {ctx.points(error.limit)}"
        case InvalidAmount():
            return f"the amount {error.reason}"
        case UnknownRedeem():
            name = quote(error.key)
            return f"there is no redeem called {prefix}{name}; {prefix}redeems lists them"
        case RedeemDisabled():
            return f"{prefix}{error.key} is switched off right now"
        case LimitReached():
            return f"{prefix}{error}"
    return str(error)


def format_duration_seconds(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))
