"""What a platform may know about the chat commands: names, descriptions and typed
parameters, as plain data.

The command layer describes its registry with these (``commands/specs.py``); a platform with
commands of its own (Discord's slash commands) builds them from the descriptions, so no command
is declared twice. The app hands a ``CommandCatalog`` to such a platform (``platforms/base.py``
``UsesCommands``): platforms never import the command layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["CommandCatalog", "CommandSpec", "ParamKind", "ParamSpec"]

# What a parameter takes, from its converter (``commands/converters.py``):
# text: one word; rest: the rest of the line; integer: a whole number; amount: points
# (100, 1.5k, all); viewer: another viewer; duration: 30s, 5m; redeem: a redeem's name.
ParamKind = Literal["text", "rest", "integer", "amount", "viewer", "duration", "redeem"]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: ParamKind
    required: bool


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str  # the command's help line (or its usage)
    params: tuple[ParamSpec, ...] = ()


class CommandCatalog(Protocol):
    def specs(self) -> list[CommandSpec]:
        """Every command the bot answers right now (aliases left out)."""
        ...

    def choices(self, kind: ParamKind, typed: str) -> list[str]:
        """Values that fit a parameter of ``kind`` and start like ``typed`` (autocomplete)."""
        ...
