"""The command registry described as plain data (``domain/command_specs.py``) for platforms
that list commands natively (Discord's slash commands): each command's name, its help line,
and its parameters with their kinds, read from the same signature and annotations the
dispatcher converts typed words with. Nothing is declared a second time."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from pixelbot.commands.converters import Amount, Duration, RedeemName, Rest, Target, Word
from pixelbot.commands.core import Command
from pixelbot.domain.command_specs import CommandSpec, ParamKind, ParamSpec

__all__ = ["describe"]

_KINDS: dict[Any, ParamKind] = {
    Amount: "amount",
    Target: "viewer",
    int: "integer",
    Duration: "duration",
    Word: "text",
    str: "text",
    Rest: "rest",
    RedeemName: "redeem",
}


def _unwrap_optional(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def params_of(command: Command) -> tuple[ParamSpec, ...]:
    """The parameters a viewer types after the command's name, in order."""
    parameters = list(inspect.signature(command.callback).parameters.values())
    skip = 2 if command.cog is not None else 1  # self, ctx
    hints = typing.get_type_hints(command.callback)
    found: list[ParamSpec] = []
    for parameter in parameters[skip:]:
        kind = _KINDS.get(_unwrap_optional(hints.get(parameter.name, str)))
        if kind is None:
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            continue
        found.append(ParamSpec(parameter.name, kind, parameter.default is inspect.Parameter.empty))
        if kind == "rest":
            break  # the rest of the line: nothing can follow it
    return tuple(found)


def describe(commands: list[Command]) -> list[CommandSpec]:
    """A spec for each command (one per command: aliases are chat shorthands)."""
    return [
        CommandSpec(command.name, command.help or command.usage, params_of(command))
        for command in commands
    ]
